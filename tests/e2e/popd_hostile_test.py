#!/usr/bin/env python3
"""End-to-end: hostile and heavy clients against poplar-popd and the real poplar-indexer.

Each attack is followed by a normal session that must still see the maildrop exactly (STAT,
UIDL, every RETR byte-exact): a 10 KB command line (one -ERR; its tail, which holds "DELE 1"
and "QUIT", never runs; before and after login, sent in pieces), NUL bytes (rejected, not
truncated), binary garbage (only -ERR replies, closed at the bad-command cap before login;
a pending DELE never executed after login), 1,000 pipelined commands in one send answered
in order (and pipelined RETRs), a silent client closed after preauth_timeout_s while others
are served, a slow client that keeps talking closed at the same absolute deadline, a half
line then a disconnect (never executed), and 200 concurrent sessions, all logged in at once.

usage: popd_hostile_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import concurrent.futures as concurrent_futures
import os
import random
import shutil
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

PREAUTH_S = 5
SESSIONS = 200  # concurrent sessions, one account each


def run(env, c):
    ix = env.indexer
    ix.add_account("vic", "vic-pw")
    env.genmbox("vic", 8, seed=21)
    state = {"want": h.expected_messages(ix.mailbox("vic")), "uidls": None}
    p = h.login(env.popd.port, "vic", "vic-pw")
    state["uidls"] = p.uidl()[1]
    p.quit()

    def normal(after):
        normal_session(c, env, state, after)

    long_lines(c, env)
    normal("a 10 KB line")
    nul_bytes(c, env)
    normal("NUL bytes")
    garbage(c, env)
    normal("binary garbage")
    pipelining(c, env, state)
    normal("1,000 pipelined commands")
    half_lines(c, env)
    normal("half lines and disconnects")
    odd_commands(c, env)
    normal("odd commands and failed logins")
    slow_reader(c, env)
    normal("a client that pipelines big RETRs and does not read")
    silent_clients(c, env, state)
    normal("silent and slow clients")
    concurrent(c, env)
    normal("200 concurrent sessions")
    c.check("popd is still running after all of it", env.popd.proc.poll() is None)


def normal_session(c, env, state, after):
    want = state["want"]
    try:
        r = logged_in_raw(env)  # waits out the lease of a dropped connection, bounded
        r.cmd("QUIT")
        r.close()
        p = h.login(env.popd.port, "vic", "vic-pw")
        ok = (p.stat() == (len(want), sum(map(len, want)))
              and p.uidl()[1] == state["uidls"]
              and all(b"".join(l + b"\r\n" for l in p.retr(i)[1]) == want[i - 1]
                      for i in range(1, len(want) + 1))
              and p.quit().startswith(b"+OK"))
        detail = ""
    except Exception as e:  # noqa: BLE001 - the check reports it
        ok, detail = False, f"{type(e).__name__}: {e}"
    with open(env.indexer.mailbox("vic"), "rb") as f:
        same = [h.wire(m) for m in h.split_mbox(f.read())] == want
    c.check(f"after {after}: a normal session sees the maildrop exactly, mbox unchanged",
            ok and same, detail)


def logged_in_raw(env, user="vic", pw="vic-pw"):
    """A raw session after USER/PASS. The previous attack may have ended its session by
    dropping the connection, whose lease the indexer releases a moment later (the e2e test
    bounds that at 2 s), so [IN-USE] is retried for up to 2 s; any other -ERR fails."""
    deadline = time.monotonic() + 2
    while True:
        r = h.Raw(env.popd.port)
        r.line()
        r.cmd(f"USER {user}")
        reply = r.cmd(f"PASS {pw}")
        if reply.startswith(b"+OK"):
            return r
        r.close()
        if not reply.startswith(b"-ERR [IN-USE]") or time.monotonic() > deadline:
            raise RuntimeError(f"login failed: {reply!r}")
        time.sleep(0.02)


def replies(r, n):
    return [r.line() for _ in range(n)]


def long_lines(c, env):
    n = len(h.expected_messages(env.indexer.mailbox("vic")))
    # After login: 10 KB, "DELE 1 " repeated (a server that wraps long lines into several
    # commands would run it) and "QUIT" after 9 KB; then STAT must show nothing deleted and
    # the connection must still be open.
    line = (b"DELE 1 " + b" " * 249) * 36 + b"QUIT " + b"x" * (10 * 1024 - 36 * 256 - 5)
    assert len(line) == 10 * 1024 and line.index(b"QUIT") >= 9 * 1024
    r = logged_in_raw(env)
    r.send(line + b"\r\nSTAT\r\nNOOP\r\n")
    got = replies(r, 3)
    c.check("10 KB line after login: exactly one -ERR, then STAT with nothing deleted",
            got[0].startswith(b"-ERR") and got[1].startswith(b"+OK %d " % n)
            and got[2].startswith(b"+OK"), repr(got))
    # The same, sent in 1 KB pieces so the line spans many reads.
    for i in range(0, len(line), 1024):
        r.send(line[i:i + 1024])
        time.sleep(0.002)  # pacing only: separate segments, not synchronisation
    r.send(b"\r\nLIST 1\r\nQUIT\r\n")
    got = replies(r, 3)
    c.check("10 KB line in 1 KB pieces: one -ERR, LIST 1 still there, QUIT +OK",
            got[0].startswith(b"-ERR") and got[1].startswith(b"+OK 1 ")
            and got[2].startswith(b"+OK"), repr(got))
    c.check("... and no further reply (the tail never ran)", r.closed_within(3) and r.buf == b"",
            repr(r.buf))
    r.close()
    # Before login: the tail carries "USER vic" / "PASS vic-pw" text; then PASS alone must
    # say USER first (the USER in the tail was never executed).
    r = h.Raw(env.popd.port)
    r.line()
    tail = b"PASS vic-pw USER vic "
    line = b"CAPA " + b"y" * (9 * 1024) + tail + b"z" * (10 * 1024 - 9 * 1024 - 5 - len(tail))
    r.send(line + b"\r\nPASS vic-pw\r\nUSER vic\r\nPASS vic-pw\r\n")
    got = replies(r, 4)
    c.check("10 KB line before login: one -ERR, the USER in its tail never ran, login works",
            got[0].startswith(b"-ERR") and got[1].startswith(b"-ERR")
            and got[2].startswith(b"+OK") and got[3].startswith(b"+OK"), repr(got))
    r.cmd("QUIT")
    r.close()
    # 255 octets including CRLF must be accepted (RFC 2449 §4): PASS with a long password.
    r = h.Raw(env.popd.port)
    r.line()
    r.cmd("USER vic")
    got = r.cmd("PASS " + "p" * (255 - 7))
    c.check("a 255-octet command line is parsed (wrong password -> -ERR [AUTH], not too long)",
            got.startswith(b"-ERR [AUTH]"), repr(got))
    r.close()


def nul_bytes(c, env):
    r = h.Raw(env.popd.port)
    r.line()
    r.send(b"USER vic\x00evil\r\nPASS vic-pw\r\n")
    got = replies(r, 2)
    c.check("NUL in USER: -ERR, not truncated to 'USER vic' (PASS then says USER first)",
            got[0].startswith(b"-ERR") and got[1].startswith(b"-ERR")
            and not got[1].startswith(b"-ERR [AUTH]"), repr(got))
    r.send(b"\x00\r\nNO\x00OP\r\n")
    got = replies(r, 2)
    c.check("lone NUL and NUL inside a verb: -ERR each", all(g.startswith(b"-ERR") for g in got),
            repr(got))
    r.close()
    r = logged_in_raw(env)
    n = len(h.expected_messages(env.indexer.mailbox("vic")))
    r.send(b"DELE 1\x00\r\nDELE\x002\r\nSTAT\r\nQUIT\r\n")
    got = replies(r, 4)
    c.check("NUL in DELE after login: -ERR, nothing marked deleted",
            got[0].startswith(b"-ERR") and got[1].startswith(b"-ERR")
            and got[2].startswith(b"+OK %d " % n) and got[3].startswith(b"+OK"), repr(got))
    r.close()


def garbage(c, env):
    rng = random.Random(1939)
    blob = bytes(rng.randrange(256) for _ in range(64 * 1024))
    r = h.Raw(env.popd.port)
    r.line()
    r.send(blob[:8192])
    closed = r.closed_within(10)
    lines = r.buf.split(b"\r\n")
    c.check("binary garbage before login: closed at the bad-command cap",
            closed and r.buf.endswith(b"\r\n") and lines[-1] == b""
            and 1 <= len(lines) - 1 <= 10 and all(l.startswith(b"-ERR") for l in lines[:-1]),
            f"closed={closed} {r.buf[:300]!r}")
    r.close()
    # After login garbage is not capped, but must never run a command: a DELE hidden after
    # the garbage's last LF would still be a separate line, so end the garbage with a LF and
    # check STAT: nothing deleted, every reply before it -ERR.
    n = len(h.expected_messages(env.indexer.mailbox("vic")))
    r = logged_in_raw(env)
    r.send(blob[8192:16384] + b"\r\nSTAT\r\n")
    got = []
    while True:
        line = r.line()
        got.append(line)
        if line.startswith(b"+OK"):
            break
    c.check(f"binary garbage after login: {len(got) - 1} -ERR replies, then STAT with nothing "
            "deleted", len(got) > 5 and all(g.startswith(b"-ERR") for g in got[:-1])
            and got[-1].startswith(b"+OK %d " % n), repr(got[:5]))
    c.check("... and QUIT +OK", r.cmd("QUIT").startswith(b"+OK"))
    r.close()


def pipelining(c, env, state):
    want = state["want"]
    n = len(want)
    cmds, expect = [], []
    for i in range(1000):
        k = i % n + 1
        if i % 3 == 0:
            cmds.append(b"LIST %d\r\n" % k)
            expect.append(b"+OK %d %d" % (k, len(want[k - 1])))
        elif i % 3 == 1:
            cmds.append(b"UIDL %d\r\n" % k)
            expect.append(b"+OK %d %s" % (k, state["uidls"][k - 1].split()[1]))
        else:
            cmds.append(b"NOOP\r\n")
            expect.append(b"+OK")
    r = logged_in_raw(env)
    r.send(b"".join(cmds))
    got = replies(r, 1000)
    c.check("1,000 pipelined LIST/UIDL/NOOP in one send: all answered, in order",
            [g if e != b"+OK" else g[:3] for g, e in zip(got, expect)] == expect,
            next((f"#{i}: {g!r} != {e!r}" for i, (g, e) in enumerate(zip(got, expect))
                  if (g if e != b"+OK" else g[:3]) != e), ""))
    # Pipelined RETRs (what mpop does): each body complete and in order.
    r.send(b"".join(b"RETR %d\r\n" % (i % n + 1) for i in range(60)) + b"STAT\r\n")
    bad = []
    for i in range(60):
        k = i % n + 1
        first = r.line()
        if first != b"+OK %d octets" % len(want[k - 1]) or r.multi() != h.stuffed(want[k - 1]):
            bad.append(i)
    c.check("60 pipelined RETRs: each complete, byte-exact, in order", not bad, str(bad))
    c.check("... and the STAT after them", r.line().startswith(b"+OK %d " % n))
    r.close()
    # A whole session in one send, across the login (mpop pipelines USER and PASS): the
    # commands queued behind PASS run after the indexer answered, in order.
    r = h.Raw(env.popd.port)
    r.line()
    r.send(b"USER vic\r\nPASS vic-pw\r\nSTAT\r\nLIST 1\r\nUIDL\r\nRETR 2\r\nQUIT\r\n")
    got = [r.line(), r.line(), r.line(), r.line()]
    uidl_first = r.line()
    uidl_body = r.multi()
    retr_first = r.line()
    retr_body = r.multi()
    last = r.line()
    c.check("a whole session pipelined behind PASS: every reply, in order",
            got[0] == b"+OK" and got[1].startswith(b"+OK maildrop")
            and got[2] == b"+OK %d %d" % (n, sum(map(len, want)))
            and got[3] == b"+OK 1 %d" % len(want[0]) and uidl_first.startswith(b"+OK")
            and uidl_body == b"".join(l + b"\r\n" for l in state["uidls"])
            and retr_first == b"+OK %d octets" % len(want[1])
            and retr_body == h.stuffed(want[1]) and last.startswith(b"+OK")
            and r.closed_within(5), repr(got))
    r.close()
    # The same with a wrong password: what follows PASS runs in AUTHORIZATION (-ERR each),
    # never as the user.
    r = h.Raw(env.popd.port)
    r.line()
    r.send(b"USER vic\r\nPASS nope\r\nSTAT\r\nRETR 1\r\nQUIT\r\n")
    got = replies(r, 5)
    c.check("pipelined behind a wrong PASS: [AUTH], then -ERR for STAT and RETR, QUIT +OK",
            got[1].startswith(b"-ERR [AUTH]") and got[2].startswith(b"-ERR")
            and got[3].startswith(b"-ERR") and got[4].startswith(b"+OK"), repr(got))
    r.close()
    # Half-closed right after a pipelined login: the answers still come.
    r = h.Raw(env.popd.port)
    r.line()
    r.send(b"USER vic\r\nPASS vic-pw\r\nSTAT\r\nQUIT\r\n")
    r.sock.shutdown(socket.SHUT_WR)
    got = replies(r, 4)
    c.check("pipelined login then half-close: USER, PASS, STAT and QUIT all answered",
            all(g.startswith(b"+OK") for g in got) and got[2] == b"+OK %d %d" % (n, sum(map(len, want))),
            repr(got))
    r.close()
    r = logged_in_raw(env)
    # Pipelined up to QUIT and half-closed (a client may do that): everything still answered.
    r.send(b"NOOP\r\n" * 100 + b"QUIT\r\n")
    r.sock.shutdown(socket.SHUT_WR)
    got = replies(r, 101)
    c.check("100 NOOP + QUIT then half-close: all 101 answered",
            all(g.startswith(b"+OK") for g in got) and r.closed_within(5), repr(got[-2:]))
    r.close()


def half_lines(c, env):
    # Before login: half a USER line, then gone.
    r = h.Raw(env.popd.port)
    r.line()
    r.send(b"USER vi")
    r.close()
    # After login: a whole DELE, then "QUIT" without its end of line, then a half-close: the
    # QUIT must not run (no +OK for it), so the DELE is never committed.
    r = logged_in_raw(env)
    r.send(b"DELE 1\r\nQUIT")
    first = r.line()
    r.sock.shutdown(socket.SHUT_WR)
    closed = r.closed_within(5)
    c.check("'QUIT' without CRLF then EOF: not executed (only DELE's +OK, then close)",
            first.startswith(b"+OK") and closed and r.buf == b"", repr(r.buf))
    r.close()
    # After login: half a RETR, then gone; the lease must come back.
    r = logged_in_raw(env)
    r.send(b"RETR 1")
    r.close()
    t0 = time.monotonic()
    while True:
        rr = h.Raw(env.popd.port)
        rr.line()
        rr.cmd("USER vic")
        reply = rr.cmd("PASS vic-pw")
        if reply.startswith(b"+OK") or time.monotonic() - t0 > 3:
            rr.cmd("QUIT")
            rr.close()
            break
        rr.close()
        time.sleep(0.05)  # polling the lease, bounded
    c.check(f"half a RETR then a disconnect: the lease is free again "
            f"({time.monotonic() - t0:.2f} s)", reply.startswith(b"+OK"), repr(reply))


def odd_commands(c, env):
    r = h.Raw(env.popd.port)
    r.line()
    r.send(b"CAPA\n")
    c.check("bare LF ends a line (CAPA\\n answered)", r.line().startswith(b"+OK") and r.multi() != b"")
    r.send(b"NO\rOP\r\nSTAT\r\nRETR 1\r\nAPOP vic 0123456789abcdef0123456789abcdef\r\n"
           b"AUTH NO-SUCH-MECH\r\nSTLS\r\n\r\nUSER\r\n")
    got = replies(r, 8)
    c.check("bare CR in a verb, TRANSACTION commands before login, APOP with a made-up digest, "
            "an unknown SASL mechanism, STLS without TLS configured, an empty line, USER "
            "without a name: -ERR each", all(g.startswith(b"-ERR") for g in got), repr(got))
    # A SASL exchange cancelled with "*" (RFC 5034 §4): -ERR, and the connection still works.
    r.send(b"AUTH PLAIN\r\n*\r\nCAPA\r\n")
    got = [r.line(), r.line(), r.line()]
    r.multi()
    c.check("AUTH PLAIN cancelled with '*': '+ ' challenge, -ERR, then CAPA +OK",
            got[0].startswith(b"+") and got[1].startswith(b"-ERR") and got[2].startswith(b"+OK"),
            repr(got))
    r.close()
    # Failed logins: the connection is closed after max_auth_failures (3), with -ERR [AUTH].
    r = h.Raw(env.popd.port)
    r.line()
    r.send(b"USER vic\r\nPASS a\r\nUSER vic\r\nPASS b\r\nUSER vic\r\nPASS c\r\nUSER vic\r\n")
    got = replies(r, 6)
    closed = r.closed_within(5)
    c.check("three wrong passwords: [AUTH] each, then the connection is closed",
            [g[:11] for g in got[1::2]] == [b"-ERR [AUTH]"] * 3 and closed and r.buf == b"",
            f"{got!r} closed={closed} {r.buf!r}")
    r.close()
    r = logged_in_raw(env)
    r.send(b"USER vic\r\nPASS vic-pw\r\nSTAT extra\r\nRETR\r\nTOP 1\r\nTOP 1 -1\r\n"
           b"UIDL 1 2\r\nDELE 99\r\nNOOP\r\n")
    got = replies(r, 9)
    c.check("after login: USER/PASS again, bad arities, out-of-range numbers: -ERR each, then "
            "NOOP +OK", all(g.startswith(b"-ERR") for g in got[:8]) and got[8].startswith(b"+OK"),
            repr(got))
    r.cmd("QUIT")
    r.close()


def uidls_of(env):
    p = h.login(env.popd.port, "vic", "vic-pw")
    lines = p.uidl()[1]
    p.quit()
    return lines


# Under ASan or TSan (tests/run.sh sets POPLAR_SANITIZED) popd's RSS is not its memory: freed
# blocks wait in the allocator's quarantine and shadow memory comes with them, so the 16 MB
# bounds below are not checked there; the backpressure itself still is (what the client could
# send, every answer complete).
RSS_CHECKED = not os.environ.get("POPLAR_SANITIZED")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def slow_reader(c, env):
    """A client pipelines 10 RETRs of a 6.6 MB message (66 MB of output) and reads nothing for
    a second: popd must stop producing at its output high-water mark, not buffer it all."""
    ix = env.indexer
    ix.add_account("slow", "slow-pw")
    with open(ix.mailbox("slow"), "wb") as f:
        f.write(h.make_message("big@example.org", "big", [
            (f".dotted {i}" if i % 9 == 0 else f"line {i} of a large body, padded out a bit")
            for i in range(150000)]))
    want = h.expected_messages(ix.mailbox("slow"))[0]
    r = logged_in_raw(env, "slow", "slow-pw")
    r.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    before = rss_kb(env.popd.proc.pid)
    r.send(b"RETR 1\r\n" * 10 + b"QUIT\r\n")
    time.sleep(1.0)  # the client not reading: this is the behaviour under test
    grown = rss_kb(env.popd.proc.pid) - before
    c.check(f"10 pipelined RETRs of {len(want) / 1e6:.1f} MB, client not reading: popd grew by "
            f"{grown} KB (< 16 MB, not the 66 MB of output)", grown < 16 * 1024 or not RSS_CHECKED)
    ok = True
    for _ in range(10):
        ok = ok and r.line() == b"+OK %d octets" % len(want) and r.multi() == h.stuffed(want)
    c.check("... then the client reads: all 10 bodies complete and byte-exact, QUIT +OK",
            ok and r.line().startswith(b"+OK"))
    r.close()
    # A flood of small commands whose answers are not read: up to 32 MB of "UIDL" (about
    # 600 MB of answers, more than any socket buffers hold). popd must stop reading at its
    # output high-water mark (backpressure), so the client's sends stall and popd's memory
    # stays flat; then, once the client reads, every command it managed to send is answered.
    one = b"+OK\r\n" + b"".join(l + b"\r\n" for l in uidls_of(env)) + b".\r\n"
    r = logged_in_raw(env)
    before = rss_kb(env.popd.proc.pid)
    flood = b"UIDL\r\n" * (32 * 1024 * 1024 // 6)
    r.sock.setblocking(False)
    sent, deadline = 0, time.monotonic() + 3
    while sent < len(flood) and time.monotonic() < deadline:
        try:
            sent += r.sock.send(flood[sent:sent + 65536])
        except BlockingIOError:
            time.sleep(0.01)  # the server stopped reading: what is under test
    grown = rss_kb(env.popd.proc.pid) - before
    c.check(f"32 MB of pipelined UIDL, answers unread: the client could send only "
            f"{sent // 1024} KB before popd stopped reading, popd grew by {grown} KB (< 16 MB)",
            sent < len(flood) and (grown < 16 * 1024 or not RSS_CHECKED))
    want_answers = sent // 6
    r.sock.setblocking(True)
    r.sock.settimeout(10)
    got, tail, ok = 0, b"", True
    try:
        while got < want_answers:
            chunk = r.sock.recv(1 << 20)
            if not chunk:
                break
            data = tail + chunk
            n = len(data) // len(one)
            if data[:n * len(one)] != one * n:
                ok = False
                break
            got += n
            tail = data[n * len(one):]
    except socket.timeout:
        pass
    c.check(f"... then the client reads: all {want_answers} UIDL answers arrive, each exact "
            f"(got {got})", ok and got == want_answers and tail == b"")
    r.close()


def silent_clients(c, env, state):
    silent = h.Raw(env.popd.port, timeout=15)
    t0 = time.monotonic()
    c.check("silent client gets the greeting", silent.line().startswith(b"+OK"))
    slow = h.Raw(env.popd.port, timeout=15)
    slow.line()
    # Meanwhile other clients are served normally.
    normal_session(c, env, state, "a silent client connected (meanwhile)")
    # The slow client keeps talking (CAPA twice a second): the pre-login deadline is absolute.
    slow_closed_at = None
    while time.monotonic() - t0 < PREAUTH_S + 4:
        try:
            slow.send(b"CAPA\r\n")
        except OSError:
            slow_closed_at = time.monotonic() - t0
            break
        if slow.closed_within(0.5):
            slow_closed_at = time.monotonic() - t0
            break
    closed = silent.closed_within(PREAUTH_S + 4 - (time.monotonic() - t0))
    took = time.monotonic() - t0
    c.check(f"silent client closed after preauth_timeout_s={PREAUTH_S} ({took:.1f} s)",
            closed and PREAUTH_S - 0.5 <= took <= PREAUTH_S + 3, repr(silent.buf))
    c.check("... with an -ERR line (or nothing) before the close",
            silent.buf in (b"",) or (silent.buf.startswith(b"-ERR") and silent.buf.count(b"\r\n") == 1),
            repr(silent.buf))
    c.check(f"slow client sending CAPA twice a second closed at the same deadline "
            f"({slow_closed_at and f'{slow_closed_at:.1f}'} s)",
            slow_closed_at is not None and PREAUTH_S - 0.5 <= slow_closed_at <= PREAUTH_S + 3)
    silent.close()
    slow.close()


def concurrent(c, env):
    ix = env.indexer
    src = ix.mailbox("vic")
    users = [f"u{i:03d}" for i in range(SESSIONS)]
    t0 = time.monotonic()

    def setup(u):
        ix.add_account(u, f"{u}-pw")
        shutil.copyfile(src, ix.mailbox(u))
        with open(ix.mailbox(u), "ab") as f:  # one message of its own: a wrong mailbox shows
            f.write(h.make_message(f"{u}@example.org", f"only for {u}", [f"this is {u}'s"]))

    with concurrent_futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(setup, users))
    print(f"      ({SESSIONS} accounts set up in {time.monotonic() - t0:.1f} s)")
    expected = {u: h.expected_messages(ix.mailbox(u)) for u in users}
    # 200 sessions, one per account, all connected and all logged in at the same time (a
    # barrier after PASS), then each STAT, UIDL, RETR of every message, QUIT.
    logged_in = threading.Barrier(SESSIONS)
    errors = []

    def one(u):
        r = None
        try:
            r = h.Raw(env.popd.port, timeout=60)
            if not r.line().startswith(b"+OK"):
                raise RuntimeError("no greeting")
            r.cmd(f"USER {u}")
            reply = r.cmd(f"PASS {u}-pw")
            if not reply.startswith(b"+OK"):
                raise RuntimeError(f"PASS: {reply!r}")
            logged_in.wait(timeout=60)
            want = expected[u]
            stat = r.cmd("STAT")
            if stat != b"+OK %d %d" % (len(want), sum(map(len, want))):
                raise RuntimeError(f"STAT {stat!r}")
            if not r.cmd("UIDL").startswith(b"+OK") or len(r.multi().split(b"\r\n")) != len(want) + 1:
                raise RuntimeError("UIDL")
            for k in range(1, len(want) + 1):
                if r.cmd(f"RETR {k}") != b"+OK %d octets" % len(want[k - 1]):
                    raise RuntimeError(f"RETR {k} first line")
                if r.multi() != h.stuffed(want[k - 1]):
                    raise RuntimeError(f"RETR {k} bytes")
            if not r.cmd("QUIT").startswith(b"+OK"):
                raise RuntimeError("QUIT")
        except Exception as e:  # noqa: BLE001 - collected and reported
            errors.append(f"{u}: {type(e).__name__}: {e}")
            logged_in.abort()
        finally:
            if r:
                r.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    took = time.monotonic() - t0
    c.check(f"{SESSIONS} concurrent sessions, all logged in at once, each on its own maildrop: "
            f"STAT, UIDL, RETR byte-exact, QUIT ({took:.1f} s)", not errors,
            f"{len(errors)} errors: " + "; ".join(errors[:5]))


if __name__ == "__main__":
    sys.exit(h.run_main(__doc__, "poplar-popd-hostile-", run, preauth_timeout_s=PREAUTH_S))
