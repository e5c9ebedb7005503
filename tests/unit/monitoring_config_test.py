#!/usr/bin/env python3
"""deploy/prometheus/poplar-rules.yml and deploy/grafana/poplar-dashboard.json against the
metrics the daemons export (common/metrics/metrics.cc, the one place they are named): every
metric an alert or a panel uses exists (a renamed metric must not leave a silent alert), every
exported metric is on the dashboard, and `promtool check rules` accepts the rules."""
import json
import re
import shutil
import subprocess
import sys

import yaml

root = sys.argv[1]
failed = 0


def check(name, ok, detail=""):
    global failed
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok else f"\n      {detail}"))
    failed += 0 if ok else 1


source = open(f"{root}/common/metrics/metrics.cc").read()
exported = set(re.findall(r'\.Name\("(poplar_[a-z0-9_]+)"\)', source))
histograms = set(re.findall(r'BuildHistogram\(\)\s*\.Name\("(poplar_[a-z0-9_]+)"\)', source))
known = set(exported) | {"up"}
for h in histograms:
    known |= {h + "_bucket", h + "_sum", h + "_count"}
check("metrics found in metrics.cc", len(exported) >= 20, sorted(exported))
for m in exported:
    check(f"{m}: poplar_ prefix, lower snake case", re.fullmatch(r"poplar_[a-z0-9_]+", m) is not None)
counters = set(re.findall(r'BuildCounter\(\)\s*\.Name\("(poplar_[a-z0-9_]+)"\)', source))
for m in counters:
    check(f"counter {m} ends in _total", m.endswith("_total"))

# Words in a PromQL expression that are metric names: identifiers not followed by "(" (a
# function) and not label names inside {} or by/on/without lists.
FUNCS = {"sum", "rate", "increase", "histogram_quantile", "max", "min", "avg", "by", "on",
         "without", "or", "and", "unless", "le", "ignoring", "group_left", "group_right"}


def metric_names(expr):
    expr = re.sub(r"\{[^}]*\}", "", expr)           # label matchers
    expr = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)", "", expr)  # grouping labels
    expr = re.sub(r"\[[^\]]*\]", "", expr)           # ranges
    names = set(re.findall(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", expr))
    return {n for n in names if n not in FUNCS and not n.startswith("__")}


rules = yaml.safe_load(open(f"{root}/deploy/prometheus/poplar-rules.yml"))
alerts = [r for g in rules["groups"] for r in g["rules"]]
check("alert rules present", len(alerts) >= 4)
for want in ["PoplarIndexerDown", "PoplarIndexLagHigh", "PoplarExpungeFailures",
             "PoplarAuthFailureStorm"]:
    check(f"alert {want} defined", any(a["alert"] == want for a in alerts))
for a in alerts:
    names = metric_names(a["expr"])
    unknown = names - known
    check(f"alert {a['alert']}: every metric exists", not unknown and names, f"unknown {unknown}")

dash = json.load(open(f"{root}/deploy/grafana/poplar-dashboard.json"))
used = set()
for p in dash["panels"]:
    for t in p.get("targets", []):
        names = metric_names(t["expr"].replace("$__rate_interval", "5m"))
        unknown = names - known
        check(f"panel {p['title']!r}: every metric exists", not unknown and names,
              f"unknown {unknown}")
        used |= names
for m in sorted(exported):
    family = {m} | ({m + "_bucket"} if m in histograms else set())
    check(f"dashboard shows {m}", bool(family & used))

promtool = shutil.which("promtool")
if promtool:
    r = subprocess.run([promtool, "check", "rules", f"{root}/deploy/prometheus/poplar-rules.yml"],
                       capture_output=True, text=True)
    check("promtool check rules", r.returncode == 0, r.stdout + r.stderr)
else:
    check("promtool installed (Debian package prometheus, deploy/install-deps.sh)", False)

print(f"{failed} failed")
sys.exit(1 if failed else 0)
