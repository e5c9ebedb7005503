#!/usr/bin/env python3
"""End-to-end: paged sessions (issue 13) on a mailbox larger than one listing page.

A 10,000-message mbox (made here, small messages, a few with dot lines and CRLF) behind the real
poplar-indexer and poplar-popd. LIST and UIDL without an argument are byte-compared, raw and
whole, with the listing built from the independent mbox splitter (sizes) and from poplar-mbox
(UIDLs); LIST n / UIDL n around the page boundaries; DELE of messages across pages leaves them
out of both listings and out of STAT; a pipelined burst of listings with a slow reader still
answers in order; RETR of messages across pages byte-exact; a delivery during the session does
not change its numbering (the session stays bound to its login-time version) and QUIT deletes
exactly the DELEted messages, the delivery kept.

usage: popd_paged_listing_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

N = 10000
PW = "paged-secret"


def make_mbox(path):
    out = []
    for i in range(N):
        body = [f"message {i}"]
        if i % 97 == 0:
            body += [".", ".. dots", "tail"]
        eol = b"\r\n" if i % 389 == 0 else b"\n"
        out.append(h.make_message(f"s{i}@example.org", f"paged {i}", body, eol=eol))
    with open(path, "wb") as f:
        f.write(b"".join(out))


def listing(raw, command):
    first = raw.cmd(command)
    return first, raw.multi()


def run(env, c):
    ix, port = env.indexer, env.popd.port
    ix.add_account("pia", PW)
    path = ix.mailbox("pia")
    make_mbox(path)
    want = h.expected_messages(path)
    c.check("fixture has 10,000 messages", len(want) == N, f"{len(want)}")
    report = json.loads(subprocess.run([env.args.poplar_mbox, "--json", path],
                                       capture_output=True, check=True).stdout)
    uidls = [m["uidl"].encode() for m in report["messages"]]
    c.check("poplar-mbox agrees with the independent splitter",
            [m["octets"] for m in report["messages"]] == [len(w) for w in want])

    want_list = b"".join(b"%d %d\r\n" % (i + 1, len(w)) for i, w in enumerate(want))
    want_uidl = b"".join(b"%d %s\r\n" % (i + 1, u) for i, u in enumerate(uidls))
    total = sum(map(len, want))

    r = h.Raw(port, timeout=30)
    r.line()
    r.cmd("USER pia")
    c.check("login", r.cmd("PASS " + PW) == b"+OK maildrop has %d messages (%d octets)" % (N, total))
    c.check("STAT", r.cmd("STAT") == b"+OK %d %d" % (N, total))
    first, body = listing(r, "LIST")
    c.check("LIST of 10,000 byte-identical to the expected listing",
            first == b"+OK %d messages (%d octets)" % (N, total) and body == want_list,
            f"{first!r}, {len(body)} vs {len(want_list)} bytes")
    first, body = listing(r, "UIDL")
    c.check("UIDL of 10,000 byte-identical to poplar-mbox's UIDLs",
            first == b"+OK" and body == want_uidl, f"{first!r}, {len(body)} vs {len(want_uidl)}")
    edges = (1, 2, 128, 129, 2048, 2049, 4096, 4097, 9999, N)
    c.check("LIST n and UIDL n at page edges",
            all(r.cmd(f"LIST {n}") == b"+OK %d %d" % (n, len(want[n - 1])) and
                r.cmd(f"UIDL {n}") == b"+OK %d %s" % (n, uidls[n - 1]) for n in edges))
    c.check("LIST past the end", r.cmd(f"LIST {N + 1}").startswith(b"-ERR"))
    bad = []
    for n in (1, 129, 2049, 5000, N):
        line = r.cmd(f"RETR {n}")
        got = r.multi()
        if line != b"+OK %d octets" % len(want[n - 1]) or got != h.stuffed(want[n - 1]):
            bad.append(n)
    c.check("RETR across pages byte-exact with the announced size", not bad, f"{bad}")

    # A delivery now is not part of this session (invariant 4): same numbering and listing.
    h.mda_append(os.path.dirname(path), "pia",
                 h.make_message("late@example.org", "delivered during the session", ["late"]))
    deleted = (2, 2048, 2049, 7777, N)
    c.check("DELE across pages", all(r.cmd(f"DELE {n}").startswith(b"+OK") for n in deleted))
    live = [i for i in range(N) if i + 1 not in deleted]
    live_total = sum(len(want[i]) for i in live)
    c.check("STAT after DELE", r.cmd("STAT") == b"+OK %d %d" % (len(live), live_total))
    # Pipelined: two listings and a STAT in one write, read back in order.
    r.send(b"LIST\r\nUIDL\r\nSTAT\r\n")
    l1 = r.line(), r.multi()
    l2 = r.line(), r.multi()
    stat = r.line()
    c.check("pipelined LIST leaves out the deleted, numbering unchanged by the delivery",
            l1[1] == b"".join(b"%d %d\r\n" % (i + 1, len(want[i])) for i in live))
    c.check("pipelined UIDL leaves out the deleted",
            l2[1] == b"".join(b"%d %s\r\n" % (i + 1, uidls[i]) for i in live))
    c.check("pipelined STAT after the listings", stat == b"+OK %d %d" % (len(live), live_total))
    c.check("QUIT", r.cmd("QUIT").startswith(b"+OK"))
    r.close()

    after = h.expected_messages(path)
    c.check("the expunge removed exactly the DELEted messages, the delivery kept",
            after[:-1] == [want[i] for i in live] and b"delivered during" in after[-1],
            f"{len(after)} messages")
    r = h.Raw(port, timeout=30)
    r.line()
    r.cmd("USER pia")
    r.cmd("PASS " + PW)
    first, body = listing(r, "UIDL")
    c.check("the next session's UIDLs are the survivors' and the delivery's",
            body.split(b"\r\n")[:-2] == [b"%d %s" % (k + 1, uidls[i]) for k, i in enumerate(live)]
            and body.count(b"\r\n") == len(live) + 1)
    r.cmd("QUIT")
    r.close()


if __name__ == "__main__":
    sys.exit(h.run_main(__doc__, "poplar-paged-", run))
