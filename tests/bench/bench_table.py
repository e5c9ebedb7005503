#!/usr/bin/env python3
"""The markdown table of tests/bench/compare.sh: medians of the raw popload lines per server and
scenario, the ratio Poplar/Dovecot, the loopback limit, the design §9 target and whether Poplar
meets it, server CPU and the machine load.

usage: bench_table.py --raw RAW [RAW...] --machine MACHINE_MD --conditions TEXT --title TEXT
"""
import argparse
import statistics
import sys


def parse(path):
    runs = []
    with open(path) as f:
        for line in f:
            fields = {}
            for tok in line.split():
                if "=" in tok:
                    k, v = tok.split("=", 1)
                    fields[k] = v
            if "server" in fields:
                runs.append(fields)
    return runs


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def values(runs, server, scenario, key):
    out = []
    for r in runs:
        if r.get("server") == server and r.get("scenario") == scenario:
            v = num(r.get(key))
            if v is not None:
                out.append(v)
    return out


def fmt(v):
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def cell(vals):
    if not vals:
        return "—"
    m = statistics.median(vals)
    if len(vals) > 1:
        return f"{fmt(m)} ({fmt(min(vals))}–{fmt(max(vals))})"
    return fmt(m)


def med(vals):
    return statistics.median(vals) if vals else None


# label, scenario, key, higher_is_better, limit (scenario, key) or None, target text, check(p, limit)
ROWS = [
    ("Sessions/s, 20 clients, plain (USER/PASS STAT UIDL LIST QUIT)", "session_off", "rate", True, None,
     "≥ 2,000", lambda p, l: p >= 2000),
    ("Session latency p50, plain, ms", "session_off", "p50_ms", False, None, "—", None),
    ("Session latency p99, plain, ms", "session_off", "p99_ms", False, None, "< 20 ms", lambda p, l: p < 20),
    ("Sessions/s, 20 clients, implicit TLS", "session_implicit", "rate", True, None, "—", None),
    ("Session latency p99, implicit TLS, ms", "session_implicit", "p99_ms", False, None, "—", None),
    ("RETR all, 1 client, plain, MB/s (no verify)", "download_off", "MBps", True, ("stream_plain", "MBps"),
     "≥ 50% of the loopback limit", lambda p, l: l is not None and p >= 0.5 * l),
    ("RETR all, 1 client, implicit TLS, MB/s", "download_implicit", "MBps", True, ("stream_tls", "MBps"),
     "≥ 700 MB/s", lambda p, l: p >= 700),
    ("RETR all, 1 client pipelining 16 RETR, plain, MB/s", "download_off_w16", "MBps", True,
     ("stream_plain", "MBps"), "≥ 50% of the loopback limit", lambda p, l: l is not None and p >= 0.5 * l),
    ("RETR all, 1 client pipelining 16 RETR, implicit TLS, MB/s", "download_implicit_w16", "MBps", True,
     ("stream_tls", "MBps"), "≥ 700 MB/s", lambda p, l: p >= 700),
    ("Big mbox, first login after a fresh copy: connect→STAT, ms", "big_cold", "stat_ms", False, None,
     "≤ 10 ms, never cold", lambda p, l: p <= 10),
    ("Big mbox, warm: connect→STAT, ms", "big_warm", "stat_ms", False, None, "≤ 10 ms", lambda p, l: p <= 10),
    ("Big mbox after one delivery: connect→STAT, ms", "big_append", "stat_ms", False, None, "≤ 10 ms",
     lambda p, l: p <= 10),
    ("Big mbox, warm: UIDL listing, ms", "big_warm", "uidl_ms", False, None, "≤ 30 ms", lambda p, l: p <= 30),
    ("Big mbox, warm: LIST listing, ms", "big_warm", "list_ms", False, None, "—", None),
    ("Full index of the big mbox (fresh database), MB/s; Poplar only", "indexer", "index_MBps", True, None,
     "≥ 500 MB/s", lambda p, l: p >= 500),
    ("New delivery visible in the index after the MDA unlocks, ms (median of 20); Poplar only", "indexer",
     "delivery_ms", False, None, "≤ 50 ms", lambda p, l: p <= 50),
    ("Same, worst of 20 deliveries, ms", "indexer", "delivery_max_ms", False, None, "≤ 50 ms",
     lambda p, l: p <= 50),
    ("Expunge of the first message of the big mbox ÷ a sequential copy (+fsync); Poplar only", "indexer",
     "expunge_ratio", False, None, "≤ 2×", lambda p, l: p <= 2),
    ("Idle authenticated connection, plain: PSS KB each", "idle_off", "pss_per_conn_kb", False, None,
     "≤ 32 KB", lambda p, l: p <= 32),
    ("Idle authenticated connection, implicit TLS: PSS KB each", "idle_implicit", "pss_per_conn_kb", False, None,
     "≤ 64 KB", lambda p, l: p <= 64),
    ("Idle authenticated connection, plain: RSS KB each", "idle_off", "rss_per_conn_kb", False, None, "—", None),
    ("Idle authenticated connections open and answering NOOP (plain)", "idle_off", "alive", True, None, "—",
     None),
    ("Concurrent connections on one popd (held after the greeting, answering CAPA; Poplar only)", "many",
     "alive", True, None, "10,000 per popd", lambda p, l: p >= 10000),
    ("Memory per held connection (greeting only): PSS KB each", "many", "pss_per_conn_kb", False, None, "—",
     None),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True, nargs="+", help="raw result files of one or more runs")
    ap.add_argument("--machine", required=True)
    ap.add_argument("--conditions", required=True)
    ap.add_argument("--title", required=True)
    args = ap.parse_args()
    runs = [r for path in args.raw for r in parse(path)]
    out = [f"# {args.title}", ""]
    with open(args.machine) as f:
        out += [line.rstrip("\n") for line in f]
    out += [f"- conditions: {args.conditions}", ""]
    out += ["Medians over the repetitions (min–max in brackets). Ratio = Poplar / Dovecot. Limit = the "
            "same bytes streamed over loopback TCP (or TLS) by a trivial forked writer in the same run. "
            "CPU = server process tree (Poplar: indexer + popd; Dovecot: master and all its children) "
            "in % of one core during the measurement; load = 1-minute load average just before each "
            "run (other engineers share this machine).", ""]
    out += ["| Scenario | Poplar | Dovecot | Poplar/Dovecot | Limit | §9 target | Met | CPU % Poplar / Dovecot | load before |",
            "|---|---|---|---|---|---|---|---|---|"]
    for label, scenario, key, _higher, limit, target, check in ROWS:
        p = values(runs, "poplar", scenario, key)
        d = values(runs, "dovecot", scenario, key)
        lim = values(runs, "limit", limit[0], limit[1]) if limit else []
        pm, dm, lm = med(p), med(d), med(lim)
        ratio = f"{pm / dm:.2f}" if pm is not None and dm not in (None, 0) else "—"
        if check is None:
            met = "—"
        elif pm is None:
            met = "no data"
        else:
            verdict = check(pm, lm)
            met = verdict if isinstance(verdict, str) else ("met" if verdict else "**not met**")
        cpu_p = med(values(runs, "poplar", scenario, "server_cpu_pct"))
        cpu_d = med(values(runs, "dovecot", scenario, "server_cpu_pct"))
        cpu = f"{fmt(cpu_p)} / {fmt(cpu_d)}" if key not in ("pss_per_conn_kb", "rss_per_conn_kb", "alive") else "—"
        if cpu_p is None and cpu_d is None:
            cpu = "—"
        if scenario in ("many", "indexer") and pm is not None and not d:
            dm = None
            ratio = "— (Dovecot not run)"
        loads = values(runs, "poplar", scenario, "load1") + values(runs, "dovecot", scenario, "load1")
        load = f"{min(loads):.2f}–{max(loads):.2f}" if loads else "—"
        lim_text = cell(lim) if limit else "—"
        if limit and pm is not None and lm:
            lim_text += f" (Poplar at {100 * pm / lm:.0f}%)"
        out.append(f"| {label} | {cell(p)} | {cell(d)} | {ratio} | {lim_text} | {target} | {met} | {cpu} | {load} |")
    out.append("")

    # Memory of both trees around the idle runs, correctness and failures.
    out += ["Server memory around the idle runs (whole process tree, KB; median):", "",
            "| Server | TLS | RSS before | RSS with the connections | PSS before | PSS with the connections | processes before / after |",
            "|---|---|---|---|---|---|---|"]
    for server in ("poplar", "dovecot"):
        for tls, scenario in (("off", "idle_off"), ("implicit", "idle_implicit")):
            def m(key):
                return fmt(med(values(runs, server, scenario, key)))
            out.append(f"| {server} | {tls} | {m('rss_before_kb')} | {m('rss_after_kb')} | {m('pss_before_kb')} | "
                       f"{m('pss_after_kb')} | {m('procs_before').split('.')[0]} / {m('procs_after').split('.')[0]} |")
    out.append("")
    out += ["Client CPU (popload, % of one core, median): " + ", ".join(
        f"{scenario} {fmt(med(values(runs, 'poplar', scenario, 'client_cpu_pct')))} / "
        f"{fmt(med(values(runs, 'dovecot', scenario, 'client_cpu_pct')))}"
        for scenario in ("session_off", "session_implicit", "download_off", "download_implicit",
                         "download_off_w16", "download_implicit_w16")) +
        " (Poplar / Dovecot runs); loopback limit: plain writer " +
        f"{fmt(med(values(runs, 'limit', 'stream_plain', 'peer_cpu_pct')))} / reader "
        f"{fmt(med(values(runs, 'limit', 'stream_plain', 'client_cpu_pct')))}, TLS writer "
        f"{fmt(med(values(runs, 'limit', 'stream_tls', 'peer_cpu_pct')))} / reader "
        f"{fmt(med(values(runs, 'limit', 'stream_tls', 'client_cpu_pct')))}.", ""]
    for server in ("poplar", "dovecot"):
        for r in runs:
            if r.get("server") == server and r.get("scenario") == "download_verify":
                out.append(f"- {server}: RETR of every message checked against the mbox (after undoing CRLF "
                           f"and dot-stuffing): {r.get('exact', '?')} exact, {r.get('mismatch', '?')} different, "
                           f"errors {r.get('errors', '?')}.")
    bad = [r for r in runs if r.get("rc", "0") != "0" or num(r.get("errors")) not in (None, 0.0)]
    if bad:
        out.append(f"- {len(bad)} run(s) reported errors or a non-zero exit:")
        for r in bad:
            out.append(f"  - {r.get('server')} {r.get('scenario')} rep {r.get('rep')}: rc={r.get('rc')} "
                       f"errors={r.get('errors', '?')} (see stderr.txt of the run)")
    else:
        out.append("- Every run completed without a protocol error.")
    out.append("")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
