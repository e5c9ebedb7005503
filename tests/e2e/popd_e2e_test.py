#!/usr/bin/env python3
"""End-to-end: poplar-popd in front of the real poplar-indexer, driven by Python's poplib and a
raw socket client.

Checks every command (USER PASS STAT LIST [n] RETR DELE NOOP RSET QUIT TOP UIDL [n] CAPA) on a
generated mbox plus hand-made messages (dot lines, ">From " lines, CRLF content, a last message
without a final newline), every RETR byte-exact against an independent mbox splitter, before
(raw, stuffed) and after (poplib) un-stuffing, with the octets LIST, STAT and RETR announce;
UIDLs stable across sessions and after an append; an MDA delivery (dotlockfile + fcntl lock)
invisible in the open session and visible in the next; [AUTH] for bad credentials; [IN-USE] at
once for a second login; a dropped session releasing its lease quickly and deleting nothing;
RSET; QUIT with DELE (expunge, skipped while the indexer answers UNIMPLEMENTED, but then the
mbox must be byte-identical); [SYS/TEMP] while the indexer is down and service again when it is
back; SIGTERM drain.

usage: popd_e2e_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import fcntl
import json
import os
import poplib
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

PW = {"alice": "alice pw with spaces", "bob": "bob-secret", "carol": "carol-secret",
      "dave": "dave-secret", "erin": "erin-secret", "frank": "frank-secret",
      "gina": "gina-secret", "hank": "hank-secret", "ivan": "ivan-secret",
      "jill": "jill-secret", "kate": "kate-secret"}


def extra_messages():
    """Messages poplar-genmbox does not make: CRLF lines, dot lines, '>From ' and 'From' in the
    body, an empty body, and (last in the file) one without a final newline."""
    m = []
    m.append(h.make_message("dots@example.org", "dots", [
        ".", "..", ".leading dot", "...three", "middle . dot", ". space after dot",
        ".", "last body line"]))
    m.append(h.make_message("crlf@example.org", "crlf content", [
        b"line one", b".dot in crlf", b"", b"line after empty", b">From quoted"], eol=b"\r\n"))
    m.append(h.make_message("quote@example.org", "quoting", [
        ">From the desk of someone", ">>From twice quoted", "From not after an empty line",
        "", ">From after an empty line", "tail"]))
    m.append(h.make_message("empty@example.org", "empty body", []))
    # An exact duplicate of the one before: UIDLs must still be unique (design §4).
    m.append(m[-1])
    m.append(h.make_message("long@example.org", "long lines", [
        "x" * 1500, "." + "y" * 1800, "z"]))
    m.append(h.make_message("nonl@example.org", "no final newline", [
        "first", ".dotted", "the last line has no newline"], final_blank=False)[:-1])
    return b"".join(m)


def run(env, c):
    ix, port = env.indexer, env.popd.port
    for user, pw in PW.items():
        ix.add_account(user, pw)
    alice = env.genmbox("alice", 25, seed=7)
    with open(alice, "ab") as f:
        f.write(extra_messages())
    for user, seed in (("bob", 3), ("carol", 4), ("dave", 5)):
        env.genmbox(user, 6, seed=seed)

    big = ix.mailbox("erin")
    with open(big, "wb") as f:
        f.write(h.make_message("a@example.org", "small before", ["hello", ".dot"]))
        f.write(h.make_message("big@example.org", "six megabytes", [
            (f".dotted line {i}" if i % 5 == 0 else f"line {i} of a large message body")
            for i in range(200000)]))
        f.write(h.make_message("c@example.org", "small after", ["bye"]))
    env.genmbox("frank", 4, seed=9)
    env.genmbox("jill", 3, seed=10)
    env.genmbox("kate", 20, seed=11)
    open(ix.mailbox("hank"), "wb").close()  # gina has no mailbox file at all, hank an empty one
    with open(ix.mailbox("ivan"), "wb") as f:  # a CRLF mbox throughout, From_ lines included
        for i in range(5):
            f.write(h.make_message(f"crlf{i}@example.org", f"crlf file {i}",
                                   [f"line {j}" if j % 3 else f".dot {j}" for j in range(i * 4)]
                                   ).replace(b"\n", b"\r\n"))

    all_commands(env, c, port, alice)
    large_message(c, port, big)
    empty_and_crlf(env, c, port)
    changed_under_session(env, c, port)
    uidl_and_delivery(env, c, port)
    credentials(c, port)
    in_use_and_leases(env, c, port)
    deletions(env, c, port)
    delete_half_while_delivering(env, c, port)
    delivery_in_progress(env, c, port)
    deliveries_racing_sessions(env, c, port)
    two_front_ends(env, c, port)
    indexer_down(env, c, port)
    indexer_killed_under_sessions(env, c, port)
    index_rebuilt(env, c, port)
    sighup_reload(env, c, port)
    sigterm_drain(env, c, port)


def retr_ok(c, name, p, n, want):
    resp, lines, octets = p.retr(n)
    got = b"".join(l + b"\r\n" for l in lines)
    announced = int(resp.split()[1])
    return c.check(name, got == want and octets == len(want) and announced == len(want),
                   f"got {len(got)} bytes (poplib counted {octets}, +OK said {announced}), "
                   f"want {len(want)}; first difference at "
                   f"{next((i for i, (a, b) in enumerate(zip(got, want)) if a != b), min(len(got), len(want)))}")


def all_commands(env, c, port, path):
    want = h.expected_messages(path)
    n = len(want)
    c.check("mbox fixture has the hand-made messages", n == 32, f"{n} messages")
    # poplar-mbox on the same file must agree with the independent splitter (invariant 1: the
    # indexer's numbers come from the mbox alone).
    report = json.loads(subprocess.run([env.args.poplar_mbox, "--json", path],
                                       capture_output=True, check=True).stdout)
    c.check("poplar-mbox sizes equal the independent splitter's",
            [m["octets"] for m in report["messages"]] == [len(w) for w in want])

    p = poplib.POP3("127.0.0.1", port, timeout=15)
    c.check("greeting +OK", p.getwelcome().startswith(b"+OK"))
    caps = p.capa()
    c.check("CAPA before login: TOP UIDL USER RESP-CODES AUTH-RESP-CODE PIPELINING, "
            "no IMPLEMENTATION",
            all(k in caps for k in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE",
                                    "PIPELINING")) and "IMPLEMENTATION" not in caps, str(caps))
    c.check("USER +OK", p.user("alice").startswith(b"+OK"))
    c.check("PASS (password with spaces) +OK", p.pass_(PW["alice"]).startswith(b"+OK"))
    c.check("CAPA after login still lists TOP UIDL PIPELINING",
            all(k in p.capa() for k in ("TOP", "UIDL", "PIPELINING")))
    count, total = p.stat()
    c.check("STAT count and octets", (count, total) == (n, sum(map(len, want))),
            f"{(count, total)} vs {(n, sum(map(len, want)))}")
    resp, listing, _ = p.list()
    sizes = [tuple(map(int, l.split())) for l in listing]
    c.check("LIST gives every message's exact octets",
            sizes == [(i + 1, len(w)) for i, w in enumerate(want)])
    c.check("LIST n", all(p.list(i).split()[1:] == [str(i).encode(), str(len(want[i - 1])).encode()]
                          for i in (1, 13, n)))
    bad = []
    for i in range(1, n + 1):
        resp, lines, octets = p.retr(i)
        got = b"".join(l + b"\r\n" for l in lines)
        if got != want[i - 1] or octets != len(want[i - 1]) or int(resp.split()[1]) != len(want[i - 1]):
            bad.append(i)
    c.check(f"RETR of all {n} messages byte-exact (poplib, un-stuffed) with the announced octets",
            not bad, f"differ: {bad}")
    for k in (0, 3):
        tops = [b"".join(l + b"\r\n" for l in p.top(i, k)[1]) for i in range(1, n + 1)]
        c.check(f"TOP n {k} of every message", tops == [h.top(w, k) for w in want],
                f"differ: {[i + 1 for i in range(n) if tops[i] != h.top(want[i], k)]}")
    _, uidl_lines, _ = p.uidl()
    uidls = [l.split()[1] for l in uidl_lines]
    c.check("UIDL lists every message with a valid unique id",
            [int(l.split()[0]) for l in uidl_lines] == list(range(1, n + 1))
            and len(set(uidls)) == n
            and all(1 <= len(u) <= 70 and all(0x21 <= b <= 0x7e for b in u) for u in uidls))
    c.check("UIDL equals poplar-mbox's UIDLs of the file",
            [u.decode() for u in uidls] == [m["uidl"] for m in report["messages"]])
    c.check("UIDL 2 is the migrated X-UIDL", p.uidl(2) == b"+OK 2 qpopper-migrated-uid-0002")
    c.check("UIDL n", p.uidl(n) == b"+OK %d %s" % (n, uidls[-1]))
    c.check("NOOP +OK", p.noop().startswith(b"+OK"))
    c.check("DELE 3 +OK", p.dele(3).startswith(b"+OK"))
    c.check("STAT after DELE leaves it out",
            p.stat() == (n - 1, sum(map(len, want)) - len(want[2])))
    c.check("LIST omits the deleted message",
            [int(l.split()[0]) for l in p.list()[1]] == [i for i in range(1, n + 1) if i != 3])
    c.check("UIDL omits the deleted message", len(p.uidl()[1]) == n - 1)
    for what, fn in (("RETR", lambda: p.retr(3)), ("DELE", lambda: p.dele(3)),
                     ("LIST", lambda: p.list(3)), ("TOP", lambda: p.top(3, 0)),
                     ("UIDL", lambda: p.uidl(3))):
        try:
            fn()
            c.check(f"{what} of a deleted message is -ERR", False, "got +OK")
        except poplib.error_proto as e:
            c.check(f"{what} of a deleted message is -ERR", str(e).startswith("b'-ERR"), str(e))
    for arg in ("0", str(n + 1), "-1", "+1", "4294967297", "1 2", "x"):
        try:
            p._shortcmd(f"LIST {arg}")
            c.check(f"LIST {arg} is -ERR", False, "got +OK")
        except poplib.error_proto as e:
            c.check(f"LIST {arg} is -ERR", str(e).startswith("b'-ERR"), str(e))
    c.check("RSET restores the deleted message", p.rset().startswith(b"+OK")
            and p.stat() == (n, sum(map(len, want))))
    retr_ok(c, "RETR 3 after RSET byte-exact", p, 3, want[2])
    c.check("QUIT +OK (nothing deleted)", p.quit().startswith(b"+OK"))
    with open(path, "rb") as f:
        c.check("a session without deletions left the mbox untouched",
                [h.wire(m) for m in h.split_mbox(f.read())] == want)

    # The bytes on the wire, still stuffed: each body is the expected message dot-stuffed, and
    # the announced size counts it before stuffing.
    r = h.Raw(port)
    r.line()
    c.check("CAPA before login has no IMPLEMENTATION line (raw)",
            r.cmd("CAPA").startswith(b"+OK") and b"IMPLEMENTATION" not in r.multi())
    r.cmd("USER alice")
    c.check("raw PASS +OK", r.cmd("PASS " + PW["alice"]).startswith(b"+OK"))
    bad = []
    for i in range(1, n + 1):
        first = r.cmd(f"RETR {i}")
        body = r.multi()
        if first != b"+OK %d octets" % len(want[i - 1]) or body != h.stuffed(want[i - 1]):
            bad.append(i)
    c.check("RETR on the wire: dot-stuffed bytes, +OK octets = size before stuffing", not bad,
            f"differ: {bad}")
    stuffed_total = sum(len(h.stuffed(w)) - len(w) for w in want)
    c.check("the fixture really exercises stuffing", stuffed_total > 10, str(stuffed_total))
    c.check("raw QUIT", r.cmd("QUIT").startswith(b"+OK"))
    r.close()


def large_message(c, port, path):
    want = h.expected_messages(path)
    c.check("large fixture: a message over 6 MB", len(want) == 3 and len(want[1]) > 6_000_000,
            str([len(w) for w in want]))
    r = h.Raw(port, timeout=20)
    r.line()
    r.cmd("USER erin")
    r.cmd("PASS " + PW["erin"])
    c.check("LIST 2 of the large message", r.cmd("LIST 2") == b"+OK 2 %d" % len(want[1]))
    t0 = time.monotonic()
    first = r.cmd("RETR 2")
    body = r.multi()
    c.check(f"RETR of a {len(want[1]) / 1e6:.1f} MB message: complete, byte-exact, stuffed "
            f"({time.monotonic() - t0:.2f} s)",
            first == b"+OK %d octets" % len(want[1]) and body == h.stuffed(want[1]),
            f"{first!r}, {len(body)} of {len(h.stuffed(want[1]))} bytes")
    r.cmd("TOP 2 99999999")
    c.check("TOP 2 99999999 (fetchmail's keep mode) gives the whole large message",
            r.multi() == h.stuffed(want[1]))
    r.send(b"RETR 2\r\nRETR 3\r\nRETR 1\r\n")
    ok = True
    for i in (2, 3, 1):
        ok = ok and r.line() == b"+OK %d octets" % len(want[i - 1]) and r.multi() == h.stuffed(want[i - 1])
    c.check("pipelined RETR of the large message and two small ones: all complete, in order", ok)
    c.check("the session goes on after them", r.cmd("QUIT").startswith(b"+OK"))
    r.close()


def empty_and_crlf(env, c, port):
    for user, what in (("gina", "no mailbox file"), ("hank", "an empty mailbox file")):
        p = h.login(port, user, PW[user])
        ok = (p.stat() == (0, 0) and p.list()[1] == [] and p.uidl()[1] == []
              and p.noop().startswith(b"+OK"))
        try:
            p.retr(1)
            ok = False
        except poplib.error_proto:
            pass
        c.check(f"{what}: STAT 0 0, empty LIST and UIDL, RETR 1 -ERR, QUIT +OK",
                ok and p.quit().startswith(b"+OK"))
    want = h.expected_messages(env.indexer.mailbox("ivan"))
    p = h.login(port, "ivan", PW["ivan"])
    c.check("CRLF mbox: 5 messages, LIST sizes exact",
            [tuple(map(int, l.split())) for l in p.list()[1]]
            == [(i + 1, len(w)) for i, w in enumerate(want)] and len(want) == 5)
    c.check("CRLF mbox: every RETR byte-exact (CRLF not doubled)",
            all(b"".join(l + b"\r\n" for l in p.retr(i)[1]) == want[i - 1] for i in range(1, 6)))
    p.quit()


def changed_under_session(env, c, port):
    """Invariant 5: if the file is not what the snapshot says, the client gets an error (or,
    once streaming started, a cut connection without the terminator), never other bytes."""
    path = env.indexer.mailbox("frank")
    with open(path, "rb") as f:
        original = f.read()
    msgs = h.split_mbox(original)
    want = [h.wire(m) for m in msgs]
    r = h.Raw(port)
    r.line()
    r.cmd("USER frank")
    r.cmd("PASS " + PW["frank"])
    # Another program rewrites message 1's body in place, same size (swapcase of the body).
    start = original.index(msgs[0])
    head, _, body = msgs[0].partition(b"\n\n")
    changed = head + b"\n\n" + body.swapcase()
    assert len(changed) == len(msgs[0]) and changed != msgs[0]
    with open(path, "r+b") as f:
        f.seek(start)
        f.write(changed)
    first = r.cmd("RETR 1")
    if first.startswith(b"+OK"):
        try:
            body = r.multi()
            complete = True
        except (EOFError, OSError):
            body, complete = r.buf, False
        c.check("same-size in-place rewrite during a session: RETR never completes with the "
                "new bytes (error or cut without the terminator)",
                not complete or body == h.stuffed(want[0]), f"{first!r} complete={complete}")
    else:
        c.check("same-size in-place rewrite during a session: RETR 1 -> -ERR [SYS/TEMP]",
                first.startswith(b"-ERR [SYS/TEMP]"), repr(first))
    r.close()
    # Truncated under an open session: RETR of the last message must be refused.
    r = h.Raw(port)
    r.line()
    r.cmd("USER frank")
    took = None
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3:  # the previous session's lease may still be ending
        reply = r.cmd("PASS " + PW["frank"])
        if reply.startswith(b"+OK"):
            took = time.monotonic() - t0
            break
        r.cmd("USER frank")
        time.sleep(0.05)
    c.check("login after the rewritten session", took is not None, repr(reply))
    n = int(r.cmd("STAT").split()[1])
    with open(path, "r+b") as f:
        f.truncate(len(original) // 2)
    first = r.cmd(f"RETR {n}")
    c.check("mbox truncated during a session: RETR of a message past the end -> -ERR [SYS/TEMP]",
            first.startswith(b"-ERR [SYS/TEMP]"), repr(first))
    r.close()


def uidl_and_delivery(env, c, port):
    path = env.indexer.mailbox("bob")
    old = h.expected_messages(path)
    p = h.login(port, "bob", PW["bob"])
    u1 = p.uidl()[1]
    p.quit()
    p = h.login(port, "bob", PW["bob"])
    c.check("UIDL identical in the next session", p.uidl()[1] == u1)
    stat = p.stat()
    # An MDA delivers while the session is open.
    new = h.make_message("late@example.org", "delivered during the session",
                         ["arrived while bob was logged in", ".with a dot"])
    h.mda_append(env.indexer.spool, "bob", new)
    c.check("delivery during a session: STAT unchanged", p.stat() == stat)
    c.check("delivery during a session: UIDL unchanged", p.uidl()[1] == u1)
    ok = all(b"".join(l + b"\r\n" for l in p.retr(i)[1]) == old[i - 1]
             for i in range(1, len(old) + 1))
    c.check("delivery during a session: old messages still byte-exact", ok)
    try:
        p.retr(len(old) + 1)
        c.check("delivery during a session: the new message is not there", False)
    except poplib.error_proto:
        c.check("delivery during a session: the new message is not there", True)
    p.quit()
    p = h.login(port, "bob", PW["bob"])
    u2 = p.uidl()[1]
    c.check("next session: the new message appears at the end, old UIDLs unchanged",
            len(u2) == len(u1) + 1 and u2[:-1] == u1
            and u2[-1].split()[1] not in [l.split()[1] for l in u1], f"{u1} -> {u2}")
    retr_ok(c, "next session: the new message byte-exact", p, len(old) + 1, h.wire(new[
        new.index(b"\n") + 1:-1]))
    p.quit()
    # A second append with no session open.
    new2 = h.make_message("later@example.org", "appended between sessions", ["hello"],
                          when="Fri Nov 28 11:00:00 2026")
    h.mda_append(env.indexer.spool, "bob", new2)
    p = h.login(port, "bob", PW["bob"])
    u3 = p.uidl()[1]
    c.check("append between sessions: UIDLs kept, one more at the end",
            len(u3) == len(u2) + 1 and u3[:-1] == u2)
    want = h.expected_messages(path)
    c.check("after appends every message byte-exact",
            all(b"".join(l + b"\r\n" for l in p.retr(i)[1]) == want[i - 1]
                for i in range(1, len(want) + 1)) and len(want) == len(old) + 2)
    p.quit()


def delivery_in_progress(env, c, port):
    """An MDA holds dotlock + fcntl lock and has written half a message: a login meanwhile
    must not wait for it nor show the partial message; after the MDA finishes and unlocks, the
    next session has it whole."""
    path = env.indexer.mailbox("bob")
    old = h.expected_messages(path)
    new = h.make_message("slow-mda@example.org", "delivered slowly", [
        "first half", ".second half", "end"], when="Sat Nov 29 12:00:00 2026")
    lock = path + ".lock"
    subprocess.run(["dotlockfile", "-l", "-r", "10", lock], check=True)
    try:
        with open(path, "ab") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            f.write(new[:len(new) // 2])
            f.flush()
            t0 = time.monotonic()
            p = h.login(port, "bob", PW["bob"])
            took = time.monotonic() - t0
            stat = p.stat()
            listing = p.uidl()[1]
            p.quit()
            c.check(f"login while an MDA holds the locks mid-delivery does not wait "
                    f"({took * 1000:.0f} ms)", took < 1.0)
            c.check("... and does not show the partial message",
                    stat == (len(old), sum(map(len, old))) and len(listing) == len(old),
                    f"{stat} vs {(len(old), sum(map(len, old)))}")
            f.write(new[len(new) // 2:])
            f.flush()
            fcntl.lockf(f, fcntl.LOCK_UN)
    finally:
        subprocess.run(["dotlockfile", "-u", lock], check=True)
    p = h.login(port, "bob", PW["bob"])
    c.check("after the MDA unlocked: the next session has the whole message, byte-exact",
            p.stat()[0] == len(old) + 1 and
            b"".join(l + b"\r\n" for l in p.retr(len(old) + 1)[1]) == h.expected_messages(path)[-1]
            and h.expected_messages(path)[:-1] == old)
    p.quit()


def deliveries_racing_sessions(env, c, port):
    """An MDA appends (dotlockfile + fcntl) in a loop while sessions log in, read everything
    and QUIT: every session sees a prefix of the final mailbox, byte-exact, with stable UIDLs;
    nothing delivered is lost or changed."""
    spool, path = env.indexer.spool, env.indexer.mailbox("jill")
    stop = threading.Event()
    delivered = []

    def mda():
        i = 0
        while not stop.is_set() and i < 60:
            msg = h.make_message(f"loop{i}@example.org", f"racing delivery {i}",
                                 [f"body {i}", f".dot {i}"] + ["filler"] * (i % 7),
                                 when=f"Sun Nov 30 12:{i // 60:02d}:{i % 60:02d} 2026")
            h.mda_append(spool, "jill", msg)
            delivered.append(msg)
            i += 1

    writer = threading.Thread(target=mda)
    writer.start()
    sessions, problems, seen_uidls = 0, [], {}
    t0 = time.monotonic()
    try:
        while writer.is_alive() and time.monotonic() - t0 < 20:
            p = h.login(port, "jill", PW["jill"])
            got = [b"".join(l + b"\r\n" for l in p.retr(i)[1])
                   for i in range(1, p.stat()[0] + 1)]
            uidls = [l.split()[1] for l in p.uidl()[1]]
            p.quit()
            sessions += 1
            with open(path, "rb") as f:
                now = [h.wire(m) for m in h.split_mbox(f.read())]
            if got != now[:len(got)]:
                problems.append(f"session {sessions}: not a byte-exact prefix")
            for i, u in enumerate(uidls):
                if seen_uidls.setdefault(i, u) != u:
                    problems.append(f"session {sessions}: UIDL of {i + 1} changed")
    finally:
        stop.set()
        writer.join()
    p = h.login(port, "jill", PW["jill"])
    final = [b"".join(l + b"\r\n" for l in p.retr(i)[1]) for i in range(1, p.stat()[0] + 1)]
    p.quit()
    want_new = [h.wire(m[m.index(b"\n") + 1:-1]) for m in delivered]
    c.check(f"{len(delivered)} MDA deliveries racing {sessions} sessions: every session a "
            f"byte-exact prefix, UIDLs stable", sessions >= 3 and not problems,
            f"{sessions} sessions; " + "; ".join(problems[:5]))
    c.check("... and the final session has every delivered message once, in order, exact",
            final[3:] == want_new and len(final) == 3 + len(delivered))


def two_front_ends(env, c, port):
    """The lease is across front-ends: a second popd on the same indexer gets [IN-USE] while
    the first holds the maildrop; a front-end killed with SIGKILL loses its leases within
    seconds (design §5). The second one opens a Sessions stream per POP3 session
    (multiplex_sessions: false), so the lease holds across shared and one-session streams."""
    other = h.Popd(env.args.popd, env.root, env.indexer.socket, name="popd2",
                   indexer_extra="multiplex_sessions: false ")
    other.start()
    try:
        first = h.login(port, "jill", PW["jill"])
        r, reply, took = pass_reply(other.port, "jill", PW["jill"])
        r.close()
        c.check(f"second front-end: -ERR [IN-USE] while the first holds the maildrop "
                f"({took * 1000:.0f} ms)", reply.startswith(b"-ERR [IN-USE]") and took < 1.0,
                repr(reply))
        first.quit()
        held = h.login(other.port, "jill", PW["jill"])
        c.check("second front-end: login once the first QUIT", held.stat()[0] > 0)
        other.proc.kill()
        other.proc.wait()
        took, reply = login_within(port, "jill", PW["jill"], 15.0)
        c.check(f"a front-end killed with SIGKILL: its lease ends within seconds "
                f"({'never' if took is None else f'{took:.2f} s'}; want < 10 s)",
                took is not None and took < 10.0, repr(reply))
    finally:
        other.stop()


def credentials(c, port):
    for user, pw, what in (("alice", "wrong", "wrong password"),
                           ("nosuchuser", "whatever", "unknown user"),
                           ("alice", PW["alice"] + " ", "password plus a space")):
        p = poplib.POP3("127.0.0.1", port, timeout=15)
        p.user(user)
        try:
            p.pass_(pw)
            c.check(f"{what} -> -ERR [AUTH]", False, "got +OK")
        except poplib.error_proto as e:
            c.check(f"{what} -> -ERR [AUTH]", e.args[0].startswith(b"-ERR [AUTH]"), repr(e))
        p.close()
    # After a failure the same connection can still log in.
    p = poplib.POP3("127.0.0.1", port, timeout=15)
    p.user("dave")
    try:
        p.pass_("bad")
    except poplib.error_proto:
        pass
    p.user("dave")
    c.check("login after a failed PASS on the same connection", p.pass_(PW["dave"]).startswith(b"+OK"))
    p.quit()


def drop(p):
    """Ends a poplib session without QUIT: the socket really closes (poplib's file object
    holds a second reference to it, so close() alone would not)."""
    p.file.close()
    p.sock.close()


def pass_reply(port, user, pw):
    r = h.Raw(port)
    r.line()
    r.cmd(f"USER {user}")
    t0 = time.monotonic()
    reply = r.cmd(f"PASS {pw}")
    return r, reply, time.monotonic() - t0


def login_within(port, user, pw, seconds):
    """Polls logins until one succeeds; returns (elapsed, last reply)."""
    t0 = time.monotonic()
    while True:
        r, reply, _ = pass_reply(port, user, pw)
        if reply.startswith(b"+OK"):
            r.cmd("QUIT")
            r.close()
            return time.monotonic() - t0, reply
        r.close()
        if time.monotonic() - t0 > seconds:
            return None, reply
        time.sleep(0.05)


def in_use_and_leases(env, c, port):
    first = h.login(port, "dave", PW["dave"])
    r, reply, took = pass_reply(port, "dave", PW["dave"])
    c.check(f"second login to an open maildrop: -ERR [IN-USE] in {took * 1000:.0f} ms (< 1 s)",
            reply.startswith(b"-ERR [IN-USE]") and took < 1.0, repr(reply))
    r.close()
    c.check("the first session still works", first.stat()[0] == 6)
    first.quit()
    r, reply, _ = pass_reply(port, "dave", PW["dave"])
    c.check("after QUIT a new login works at once", reply.startswith(b"+OK"), repr(reply))
    # Dropped right after PASS, lease held: it must be released quickly.
    r.sock.close()
    took, reply = login_within(port, "dave", PW["dave"], 3.0)
    c.check(f"a connection dropped after PASS releases its lease "
            f"({'never' if took is None else f'{took * 1000:.0f} ms'}; want < 2 s)",
            took is not None and took < 2.0, repr(reply))


def delete_half_while_delivering(env, c, port):
    """Issue 5: a client deletes half the messages and quits while an MDA keeps delivering
    (dotlockfile + fcntl); the next session and this file's own mbox parser agree on the result:
    the undeleted old messages, then every delivery, each byte-exact, UIDLs unchanged."""
    path = env.indexer.mailbox("kate")
    old = h.split_mbox(open(path, "rb").read())
    delivered = []
    stop = threading.Event()

    def mda():
        i = 0
        while not stop.is_set() or i < 3:
            msg = h.make_message(f"mda{i}@example.org", f"during expunge {i}", [f"body {i}", ".dot"])
            h.mda_append(env.indexer.spool, "kate", msg)
            delivered.append(msg)
            i += 1
            time.sleep(0.01)

    p = h.login(port, "kate", PW["kate"])
    uidls = [u.split()[1] for u in p.uidl()[1]]
    t = threading.Thread(target=mda)
    t.start()
    time.sleep(0.05)
    for n in range(1, len(old) + 1, 2):
        p.dele(n)
    time.sleep(0.3)  # more mail lands after the snapshot, before and during the expunge
    quit_reply = p.quit()
    stop.set()
    t.join()
    c.check("delete half while an MDA delivers: QUIT +OK", quit_reply.startswith(b"+OK"), repr(quit_reply))
    kept = [m for i, m in enumerate(old) if i % 2 == 1]
    want = [h.wire(m) for m in kept] + [h.wire(m) for m in h.split_mbox(b"".join(delivered))]
    now = h.split_mbox(open(path, "rb").read())
    c.check(f"the mbox parses to the {len(kept)} kept + {len(delivered)} delivered messages, byte-exact",
            [h.wire(m) for m in now] == want, f"{len(now)} messages")
    p = h.login(port, "kate", PW["kate"])
    got = [b"\r\n".join(p.retr(i)[1]) + b"\r\n" for i in range(1, p.stat()[0] + 1)]
    new_uidls = [u.split()[1] for u in p.uidl()[1]]
    p.quit()
    c.check("the next session serves exactly those, byte-exact", got == want)
    c.check("the kept messages keep their UIDLs",
            new_uidls[:len(kept)] == [u for i, u in enumerate(uidls) if i % 2 == 1])


def deletions(env, c, port):
    path = env.indexer.mailbox("carol")
    with open(path, "rb") as f:
        original = f.read()
    want = [h.wire(m) for m in h.split_mbox(original)]
    p = h.login(port, "carol", PW["carol"])
    uidls = p.uidl()[1]
    p.dele(1)
    p.dele(2)
    c.check("RSET undoes DELE", p.rset().startswith(b"+OK") and p.stat()[0] == len(want))
    c.check("QUIT after RSET +OK", p.quit().startswith(b"+OK"))
    with open(path, "rb") as f:
        c.check("QUIT after DELE+RSET deleted nothing (mbox byte-identical)", f.read() == original)
    p = h.login(port, "carol", PW["carol"])
    c.check("... and the next session has every message", p.uidl()[1] == uidls)
    # DELE, then the connection drops without QUIT: nothing deleted.
    p.dele(1)
    p.dele(len(want))
    drop(p)
    took, _ = login_within(port, "carol", PW["carol"], 3.0)
    c.check("after a drop the maildrop is free again", took is not None)
    with open(path, "rb") as f:
        c.check("DELE then a dropped connection deleted nothing (mbox byte-identical)",
                f.read() == original)
    p = h.login(port, "carol", PW["carol"])
    c.check("... and the next session has every message with its UIDL", p.uidl()[1] == uidls)
    # QUIT with DELE 1 and DELE 3: the expunge.
    p.dele(1)
    p.dele(3)
    try:
        quit_reply = p.quit()
    except poplib.error_proto as e:
        quit_reply = e.args[0]
    with open(path, "rb") as f:
        after = f.read()
    if quit_reply.startswith(b"+OK"):
        kept = [want[i] for i in range(len(want)) if i not in (0, 2)]
        c.check("QUIT with DELE 1, 3: the mbox holds exactly the other messages",
                [h.wire(m) for m in h.split_mbox(after)] == kept)
        p = h.login(port, "carol", PW["carol"])
        left = p.uidl()[1]
        c.check("next session: deleted messages gone, the others keep their UIDLs",
                [l.split()[1] for l in left] ==
                [l.split()[1] for i, l in enumerate(uidls) if i not in (0, 2)])
        c.check("next session: kept messages byte-exact",
                all(b"".join(l + b"\r\n" for l in p.retr(i)[1]) == kept[i - 1]
                    for i in range(1, len(kept) + 1)))
        p.quit()
        return
    # Only the known gap may be skipped: the indexer's UNIMPLEMENTED answer to a non-empty
    # Commit ("expunge is not available yet", indexer/indexer.cc), which popd maps to
    # [SYS/PERM] and logs. Any other failure of QUIT is a failure.
    # popd writes the session's log line when it closes the connection, just after the
    # reply went out: wait (bounded) for the line rather than race it.
    deadline = time.monotonic() + 5
    while True:
        log = env.popd.log_text()
        unimplemented = any("user=carol" in l and "commit failed" in l
                            and ("unimplemented" in l.lower() or "expunge is not available yet" in l)
                            for l in log.splitlines())
        if unimplemented or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    c.check(f"QUIT with DELE failed only because the commit is UNIMPLEMENTED: {quit_reply!r}",
            quit_reply.startswith(b"-ERR [SYS/PERM]") and unimplemented, log[-600:])
    c.check("a failed QUIT deleted nothing (mbox byte-identical)", after == original)
    p = h.login(port, "carol", PW["carol"])
    c.check("a failed QUIT: the next session has every message with its UIDL",
            p.uidl()[1] == uidls)
    p.quit()
    c.skip("QUIT with DELE expunges (deleted gone, others keep UIDLs, bytes exact)",
           "expected to fail until the expunge lands: the indexer answered the commit with "
           "UNIMPLEMENTED")


def indexer_down(env, c, port):
    env.indexer.stop()
    r, reply, took = pass_reply(port, "dave", PW["dave"])
    c.check(f"indexer stopped: PASS -> -ERR [SYS/TEMP] ({took:.2f} s)",
            reply.startswith(b"-ERR [SYS/TEMP]"), repr(reply))
    r.close()
    c.check("indexer stopped: popd keeps running", env.popd.proc.poll() is None)
    r = h.Raw(port)
    c.check("indexer stopped: popd still greets", r.line().startswith(b"+OK"))
    r.close()
    env.indexer.start()
    took, reply = login_within(env.popd.port, "dave", PW["dave"], 15.0)
    c.check(f"indexer back: logins work again "
            f"({'never' if took is None else f'after {took:.2f} s'})", took is not None,
            repr(reply))
    if took is not None:
        p = h.login(port, "dave", PW["dave"])
        c.check("indexer back: the maildrop is served byte-exact",
                [b"".join(l + b"\r\n" for l in p.retr(i)[1]) for i in range(1, 7)]
                == h.expected_messages(env.indexer.mailbox("dave")))
        p.quit()


def indexer_killed_under_sessions(env, c, port):
    """popd carries the sessions of each event loop over one stream to the indexer: when the
    indexer dies, every open session on it fails as its own stream would have (popd hangs up,
    nothing is committed), popd goes on, and once the indexer is back the next logins work."""
    users = ("bob", "carol", "frank", "kate")
    before = {}
    for user in users:
        with open(env.indexer.mailbox(user), "rb") as f:
            before[user] = f.read()
    sessions = []
    for user in users:  # several per event loop (popd runs two here)
        p = h.login(port, user, PW[user])
        p.dele(1)
        sessions.append(p)
    env.indexer.proc.kill()  # SIGKILL: no goodbye on the streams
    env.indexer.proc.wait()
    closed = 0
    for p in sessions:
        p.sock.settimeout(10)
        try:
            closed += p.sock.recv(1) == b""  # popd hangs up without a word
        except OSError:
            closed += 1  # reset: closed too
    c.check(f"indexer killed: popd ends every open session ({closed} of {len(sessions)})",
            closed == len(sessions))
    c.check("indexer killed: popd keeps running", env.popd.proc.poll() is None)
    r, reply, _ = pass_reply(port, "dave", PW["dave"])
    r.close()
    c.check("indexer killed: a login meanwhile -> -ERR [SYS/TEMP]", reply.startswith(b"-ERR [SYS/TEMP]"),
            repr(reply))
    env.indexer.start()
    ok = all(login_within(port, user, PW[user], 15.0)[0] is not None for user in users)
    c.check("indexer back: every one of those users logs in again", ok)
    unchanged = True
    for user in users:
        with open(env.indexer.mailbox(user), "rb") as f:
            unchanged = unchanged and f.read() == before[user]
    c.check("the DELEs of the sessions the indexer's death ended were not committed", unchanged)
    # Sessions on both event loops work again, QUIT included (logins spread by the kernel).
    fine = 0
    for _ in range(6):
        p = h.login(port, "bob", PW["bob"])
        fine += p.stat()[0] == before["bob"].count(b"\nFrom ") + 1 and p.quit().startswith(b"+OK")
    c.check(f"after the restart six sessions in a row STAT and QUIT +OK ({fine})", fine == 6)


def index_rebuilt(env, c, port):
    """Invariant 1: delete the SQLite index and restart: the same numbers, sizes and UIDLs
    (accounts live in the index, so they are added again)."""
    before = {}
    for user in ("alice", "bob"):
        p = h.login(port, user, PW[user])
        before[user] = (p.list()[1], p.uidl()[1])
        p.quit()
    env.indexer.stop()
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(os.path.join(env.root, "index.sqlite" + suffix))
        except FileNotFoundError:
            pass
    env.indexer.start()
    for user, pw in PW.items():
        env.indexer.add_account(user, pw)
    for user in ("alice", "bob"):
        took, reply = login_within(port, user, PW[user], 15.0)
        if took is None:
            c.check(f"index deleted and rebuilt: {user} can log in", False, repr(reply))
            continue
        p = h.login(port, user, PW[user])
        c.check(f"index deleted and rebuilt: {user} has the same LIST and UIDL",
                (p.list()[1], p.uidl()[1]) == before[user])
        p.quit()


def sighup_reload(env, c, port):
    conf = env.popd.config
    with open(conf) as f:
        original = f.read()

    def reload(text, expect):
        """Writes the config, sends SIGHUP and waits (bounded) for popd's log line saying
        what it did with it."""
        with open(conf, "w") as f:
            f.write(text)
        before = env.popd.log_text(10 ** 6).count(expect)
        env.popd.proc.send_signal(1)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if env.popd.log_text(10 ** 6).count(expect) > before:
                return True
            time.sleep(0.02)
        return False

    open_session = h.login(port, "dave", PW["dave"])
    no_plain = "\n".join(l for l in original.splitlines() if "plaintext_auth_networks" not in l)
    c.check("SIGHUP with plaintext logins removed: reloaded",
            reload(no_plain + "\n", "SIGHUP: configuration reloaded"))
    # popd logs "reloaded" when it has posted the new settings to its event loops, which apply
    # them a moment later: poll (bounded) for a connection that has them.
    deadline = time.monotonic() + 3
    while True:
        r = h.Raw(port)
        r.line()
        capa_ok = r.cmd("CAPA").startswith(b"+OK") and b"USER" not in r.multi().split(b"\r\n")
        if capa_ok or time.monotonic() > deadline:
            break
        r.close()
        time.sleep(0.02)
    c.check("after the reload CAPA offers no USER", capa_ok)
    c.check("after the reload USER -> -ERR [AUTH]", r.cmd("USER dave").startswith(b"-ERR [AUTH]"))
    r.close()
    c.check("a session open before the reload goes on", open_session.stat()[0] == 6
            and open_session.quit().startswith(b"+OK"))
    c.check("SIGHUP with a broken file: the running configuration is kept",
            reload(original + "no_such_field: 1\n", "SIGHUP: keeping the running configuration"))
    r = h.Raw(port)
    r.line()
    c.check("... (still no USER)", r.cmd("USER dave").startswith(b"-ERR [AUTH]"))
    r.close()
    c.check("SIGHUP with plaintext logins back: reloaded",
            reload(original, "SIGHUP: configuration reloaded"))
    took, reply = login_within(port, "dave", PW["dave"], 3.0)
    c.check("after the reload USER/PASS works again", took is not None, repr(reply))


def sigterm_drain(env, c, port):
    want = h.expected_messages(env.indexer.mailbox("dave"))
    p = h.login(port, "dave", PW["dave"])
    env.popd.proc.send_signal(15)
    # Readiness: poll until the listeners are gone (connections refused).
    refused = False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2)
            s.close()
            time.sleep(0.02)
        except ConnectionResetError:
            # Queued on a listener just as popd closed it: the kernel resets such connections.
            # Not served either; the next attempt finds the port closed.
            time.sleep(0.02)
        except ConnectionRefusedError:
            refused = True
            break
    c.check("SIGTERM: new connections are refused", refused)
    c.check("SIGTERM: the open session still answers STAT", p.stat()[0] == len(want))
    retr_ok(c, "SIGTERM: the open session can still RETR byte-exact", p, 1, want[0])
    c.check("SIGTERM: the open session QUITs +OK", p.quit().startswith(b"+OK"))
    try:
        rc = env.popd.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        rc = None
    c.check(f"SIGTERM: popd exits 0 once the session ended (rc={rc})", rc == 0)


if __name__ == "__main__":
    sys.exit(h.run_main(__doc__, "poplar-popd-e2e-", run))
