#!/usr/bin/env python3
"""Prometheus metrics and the session log line (issue 14): both daemons with
metrics { listen_address: "127.0.0.1:0" }, a scripted POP3 workload with poplib, then GET
/metrics on each and every value asserted one by one; the one log line per session field by
field; sd_notify READY=1 and STOPPING=1 on $NOTIFY_SOCKET."""
import os
import poplib
import re
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

METRICS_PORT = re.compile(rb"listening on metrics \S+ port (\d+)")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
PASSWORD = "s3cret-Passw0rd"


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert r.status == 200
        text = r.read().decode()
    samples = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE.match(line)
        if m:
            samples[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return text, samples


def wait_for(fn, timeout=10.0):
    """Polls a condition the daemons reach asynchronously (a session's end is counted when its
    connection closes, after the client's QUIT returned)."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)


def before_start(env):
    for path in (env.indexer.config, env.popd.config):
        with open(path, "a") as f:
            f.write('metrics { listen_address: "127.0.0.1:0" }\n')
    # systemd's readiness protocol, with the test as systemd.
    env.notify_path = os.path.join(env.root, "notify.sock")
    env.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    env.notify.bind(env.notify_path)
    os.environ["NOTIFY_SOCKET"] = env.notify_path


def notifications(sock, timeout=10.0):
    sock.settimeout(timeout)
    try:
        return sock.recv(256).decode()
    except socket.timeout:
        return ""


def body(env, c):
    os.environ.pop("NOTIFY_SOCKET", None)
    got = {notifications(env.notify), notifications(env.notify)}
    c.check("sd_notify: both daemons said READY=1", got == {"READY=1"}, repr(got))

    ix_port = int(METRICS_PORT.search(open(env.indexer.log, "rb").read()).group(1))
    pd_port = int(METRICS_PORT.search(env.popd.banner).group(1))
    c.check("metrics ports printed", ix_port > 0 and pd_port > 0, f"{ix_port} {pd_port}")

    env.genmbox("alice", 5, seed=7)
    env.indexer.add_account("alice", PASSWORD)
    port = env.popd.port
    mbox = env.indexer.mailbox("alice")
    size_before = os.path.getsize(mbox)

    # 1. USER/PASS: STAT, LIST, RETR 1, RETR 2, DELE 1, QUIT (one expunge).
    p = h.login(port, "alice", PASSWORD)
    p.stat()
    sizes = [int(x.split()[1]) for x in p.list()[1]]
    p.retr(1)
    p.retr(2)
    p.dele(1)
    p.quit()
    size_after = os.path.getsize(mbox)

    # 2. A wrong password (bad_credentials), a login while alice is in a session ([IN-USE]).
    reply = h.login_reply(port, "alice", "wrong")
    c.check("wrong password refused", reply.startswith(b"-ERR"), reply)
    held = poplib.POP3("127.0.0.1", port, timeout=15)
    held._shortcmd("AUTH PLAIN " + __import__("base64").b64encode(
        f"\0alice\0{PASSWORD}".encode()).decode())
    in_use = h.login_reply(port, "alice", PASSWORD)
    c.check("second login gets [IN-USE]", b"[IN-USE]" in in_use, in_use)
    # poplarctl while alice's session is open: the one-screen status, sessions list filters.
    r = env.indexer.ctl("status")
    c.check("status: one session open, alice's mailbox busiest and in session",
            r.returncode == 0 and "sessions    1 open" in r.stdout
            and re.search(r"^\S+/alice +alice +4 +\d+ +yes$", r.stdout, re.M) is not None
            and re.search(r"^expunges    1\b", r.stdout, re.M) is not None
            and "expunging   none" in r.stdout, r.stdout)
    for args, want in ((["--user", "alice"], 1), (["--user", "bob"], 0),
                       (["--client", "127.0.0."], 1), (["--client", "10."], 0),
                       (["--older-than", "3600"], 0)):
        r = env.indexer.ctl("--json", "sessions", "list", *args)
        got = len(__import__("json").loads(r.stdout).get("sessions", [])) if r.returncode == 0 else -1
        c.check(f"sessions list {' '.join(args)}: {want}", got == want, r.stdout + r.stderr)
    js = __import__("json").loads(env.indexer.ctl("--json", "status").stdout)
    c.check("status --json: expunges and start time", js.get("expunges") == "1"
            and int(js.get("started_unix_ms", 0)) > 0 and js.get("expunging") == [], js)
    held.quit()

    # 3. A delivery (the lag histogram: exactly one more observation; genmbox's own writing may
    # already have been seen in two steps, as any unlocked writer can be), an admin call that
    # fails (gRPC error counter).
    lag_before = wait_for(lambda: (lambda s: s if s.get("poplar_indexer_messages") == 4 else None)(
        scrape(ix_port)[1]))["poplar_indexer_delivery_lag_seconds_count"]
    h.mda_append(env.indexer.spool, "alice",
                 h.make_message("bob@example.org", "late one", ["hello"]))
    r = env.indexer.ctl("accounts", "remove", "nobody-here")
    c.check("poplarctl accounts remove of an unknown user fails", r.returncode == 1, r.stderr)

    _, pd = scrape(pd_port)
    pd = wait_for(lambda: (lambda s: s if s.get('poplar_popd_sessions_total{result="no_login"}')
                           == 2 else None)(scrape(pd_port)[1])) or pd
    expect_popd = {
        'poplar_popd_commands_total{verb="USER"}': 3,
        'poplar_popd_commands_total{verb="PASS"}': 3,
        'poplar_popd_commands_total{verb="AUTH"}': 1,
        'poplar_popd_commands_total{verb="STAT"}': 1,
        'poplar_popd_commands_total{verb="LIST"}': 1,
        'poplar_popd_commands_total{verb="RETR"}': 2,
        'poplar_popd_commands_total{verb="DELE"}': 1,
        # login_reply hangs up without QUIT after its answer
        'poplar_popd_commands_total{verb="QUIT"}': 2,
        'poplar_popd_logins_total{mechanism="USER"}': 1,
        'poplar_popd_logins_total{mechanism="PLAIN"}': 1,
        'poplar_popd_logins_total{mechanism="APOP"}': 0,
        'poplar_popd_login_failures_total{mechanism="USER",reason="bad_credentials"}': 1,
        'poplar_popd_login_failures_total{mechanism="USER",reason="in_use"}': 1,
        'poplar_popd_sessions_total{result="quit"}': 2,
        'poplar_popd_sessions_total{result="no_login"}': 2,
        'poplar_popd_sessions_total{result="client_disconnected"}': 0,
        'poplar_popd_connections_total': 4,
        'poplar_popd_connections_open': 0,
        'poplar_popd_tls_handshakes_total{kind="implicit"}': 0,
        'poplar_popd_tls_handshake_failures_total{kind="stls"}': 0,
        'poplar_build_info{version="0.1.0"}': 1,
    }
    for name, want in expect_popd.items():
        c.check(f"popd {name} == {want}", pd.get(name) == want, f"got {pd.get(name)}")
    c.check("popd sent bytes cover the two messages",
            pd.get("poplar_popd_sent_bytes_total", 0) > sum(sizes[:2]),
            f"{pd.get('poplar_popd_sent_bytes_total')} vs {sum(sizes[:2])}")
    c.check("no user name in any popd label",
            not any("alice" in k for k in pd), [k for k in pd if "alice" in k])

    ix = wait_for(lambda: (lambda s: s if s.get("poplar_indexer_delivery_lag_seconds_count", 0)
                           > lag_before and s.get("poplar_indexer_messages") == 5
                           else None)(scrape(ix_port)[1]))
    ix = ix or scrape(ix_port)[1]
    expect_indexer = {
        "poplar_indexer_expunged_messages_total": 1,
        "poplar_indexer_expunge_duration_seconds_count": 1,
        "poplar_indexer_expunge_rewritten_bytes_total": None,  # checked below
        'poplar_indexer_expunge_refusals_total{reason="changed"}': 0,
        'poplar_indexer_expunge_refusals_total{reason="locked"}': 0,
        "poplar_indexer_mailboxes": 1,
        "poplar_indexer_messages": 5,
        "poplar_indexer_mailbox_bytes": None,
        "poplar_indexer_leases": 0,
        "poplar_indexer_inotify_overflows_total": 0,
        'poplar_indexer_grpc_errors_total{code="NOT_FOUND",method="RemoveAccount"}': 1,
    }
    for name, want in expect_indexer.items():
        if want is None:
            continue
        c.check(f"indexer {name} == {want}", ix.get(name) == want, f"got {ix.get(name)}")
    c.check("one delivery, one lag observation",
            ix.get("poplar_indexer_delivery_lag_seconds_count", 0) - lag_before == 1,
            f"{lag_before} -> {ix.get('poplar_indexer_delivery_lag_seconds_count')}")
    c.check("indexer rescans counted (the start-up scan)",
            ix.get("poplar_indexer_rescans_total", 0) >= 1, ix.get("poplar_indexer_rescans_total"))
    rewritten = ix.get("poplar_indexer_expunge_rewritten_bytes_total", 0)
    c.check("expunge rewrote the tail after message 1",
            0 < rewritten <= size_after, f"{rewritten} of {size_after}")
    c.check("indexed bytes match the mailbox's messages",
            ix.get("poplar_indexer_mailbox_bytes", 0) > 0, ix.get("poplar_indexer_mailbox_bytes"))
    c.check("the lag histogram's sum is a plausible delay",
            0 <= ix.get("poplar_indexer_delivery_lag_seconds_sum", -1) < 30,
            ix.get("poplar_indexer_delivery_lag_seconds_sum"))

    # The session log line, field by field.
    log = env.popd.log_text(1 << 20)
    lines = [l for l in log.splitlines() if "session user=alice " in l and " mech=USER " in l]
    c.check("one session line for the USER/PASS session", len(lines) == 1, log[-800:])
    if lines:
        fields = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)', lines[0].split("session ", 1)[1]))
        expect = {"user": "alice", "client": "127.0.0.1", "tls": "none", "mech": "USER",
                  "retrieved": "2", "retrieved_bytes": str(sizes[0] + sizes[1]),
                  "deleted": "1", "deleted_bytes": str(size_before - size_after), "end": "quit"}
        for k, v in expect.items():
            c.check(f"session line {k}={v}", fields.get(k) == v, f"got {fields.get(k)}")
        c.check("session line sent_bytes", int(fields.get("sent_bytes", 0)) > sum(sizes[:2]),
                fields.get("sent_bytes"))
        c.check("session line duration_s", re.fullmatch(r"\d+\.\d{3}", fields.get("duration_s", ""))
                is not None, fields.get("duration_s"))
        c.check("session line keys in their order",
                list(fields)[:12] == ["user", "client", "tls", "mech", "retrieved",
                                      "retrieved_bytes", "deleted", "deleted_bytes", "sent_bytes",
                                      "duration_s", "end", "reason"], list(fields))
    plain = [l for l in log.splitlines() if "session user=alice " in l and " mech=PLAIN " in l]
    c.check("the AUTH PLAIN session's line", len(plain) == 1 and " end=quit " in plain[0], plain)
    failed = [l for l in log.splitlines() if "session user=- " in l and " end=no_login " in l]
    c.check("the two sessions without a login have a line each", len(failed) == 2, failed)
    c.check("no password in any log", PASSWORD not in log and PASSWORD not in env.indexer.log_text(1 << 20))

    env.popd.stop()
    env.indexer.stop()
    got = {notifications(env.notify, 5), notifications(env.notify, 5)}
    c.check("sd_notify: both daemons said STOPPING=1", got == {"STOPPING=1"}, repr(got))


if __name__ == "__main__":
    sys.exit(h.run_main(__doc__, "poplar-ops-metrics-", body, before_start=before_start))
