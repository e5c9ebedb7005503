#!/usr/bin/env python3
"""The configuration man pages against the schema (issue 14): every field of IndexerConfig and
PopdConfig, nested ones included, found independently of gen_man.py by protoc's own descriptor
(`protoc --descriptor_set_out`), has an entry in the generated page, with its default and a
description (the schema's comment, or the page's FIELDS list). Also: every page renders with
man(1) without a warning.

usage: man_schema_test.py SOURCE_ROOT PROTOC OUT_DIR"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

root, protoc, out = sys.argv[1], sys.argv[2], sys.argv[3]
failed = 0


def check(name, ok, detail=""):
    global failed
    print(("ok    " if ok else "FAIL  ") + name + ("" if ok else f"\n      {detail}"))
    failed += 0 if ok else 1


subprocess.run([sys.executable, os.path.join(root, "docs/man/gen_man.py"), root, out], check=True)

# The schema as protoc sees it: FileDescriptorSet, read with the decoder of
# google.protobuf if present, else from `protoc --decode_raw`'s text.
with tempfile.TemporaryDirectory() as tmp:
    ds = os.path.join(tmp, "d.pb")
    subprocess.run([protoc, f"-I{root}/proto", f"--descriptor_set_out={ds}",
                    "poplar/config.proto", "poplar/popd_config.proto"], check=True)
    raw = subprocess.run([protoc, "--decode_raw"], stdin=open(ds, "rb"), capture_output=True,
                         text=True, check=True).stdout

# decode_raw of a FileDescriptorSet: file (1) { message_type (4) { name (1), field (2) { name (1),
# type_name (6), json_name (10) } } }; nested enums (4 inside a message) are other paths.
messages = {}
path = []
msg = None
current = None
for line in raw.splitlines():
    s = line.strip()
    if s.endswith("{"):
        path.append(s[:-1].strip())
        if path == ["1", "4", "2"]:
            current = {"name": None, "type_name": None}
            messages[msg].append(current)
        continue
    if s == "}":
        path.pop()
        continue
    m = re.match(r"(\d+): (.*)", s)
    if not m:
        continue
    key, val = m.group(1), m.group(2).strip('"')
    if path == ["1", "4"] and key == "1":
        msg = val
        messages[msg] = []
    elif path == ["1", "4", "2"] and key == "10":
        # json_name, which protoc derives from the name (foo_bar -> fooBar); the name itself
        # (key 1) is not used: --decode_raw may mistake a string for a nested message.
        current["name"] = re.sub(r"([A-Z])", lambda c: "_" + c.group(1).lower(), val)
    elif path == ["1", "4", "2"] and key == "6":
        current["type_name"] = val.split(".")[-1]

fields = set()


def walk(msg, prefix):
    for f in messages.get(msg, []):
        path = prefix + f["name"]
        fields.add(path)
        if f["type_name"] in messages:
            walk(f["type_name"], path + ".")


for page, top in (("poplar-indexer.conf.5", "IndexerConfig"), ("poplar-popd.conf.5", "PopdConfig")):
    fields.clear()
    walk(top, "")
    check(f"{top}: schema read ({len(fields)} fields)", len(fields) > 20, sorted(fields))
    text = open(os.path.join(out, page)).read()
    entries = dict(re.findall(r"^\.TP\n\\fB(.+?)\\fR \(.*?\)\n(.*)$", text, flags=re.M))
    entries = {k.replace("\\-", "-"): v for k, v in entries.items()}
    for f in sorted(fields):
        check(f"{page}: {f} documented", f in entries and len(entries[f].strip()) >= 10,
              entries.get(f, "no entry"))
    for e in entries:
        check(f"{page}: {e} is a field of the schema", e in fields)

man = shutil.which("man")
for page in sorted(os.listdir(out)):
    if man:
        r = subprocess.run([man, "--warnings", "-l", os.path.join(out, page)], capture_output=True,
                           text=True, env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_STDERR": "1"})
        check(f"{page} renders without warnings", r.returncode == 0 and not r.stderr.strip(),
              r.stderr[:400])
print(f"{failed} failed")
sys.exit(1 if failed else 0)
