#!/usr/bin/env python3
"""End-to-end, issue 15: a delivery never changes the messages already in the mailbox.

A mailbox whose last message has no final newline (or ends in CRLF without one, trailing blanks,
one or more trailing empty lines, a '>From ' last line) receives a delivery from a padding MDA
(dotlockfile + fcntl; it writes the missing newline and the empty line first), from procmail
itself, and from an MDA that does not pad. Through poplar-popd and the real poplar-indexer:
  * the UIDLs and sizes of the old messages are those of the session before the delivery,
    except where the delivery glued text onto the old last message (then it changed, and the
    mailbox says so: the delivery is part of it);
  * a session that DELEs the old last message while the delivery happens gets +OK at QUIT, and
    the mailbox afterwards holds exactly the other messages and the new one;
  * fetchmail, mpop and getmail6 with keep + UIDL state fetch exactly the new message after such
    a delivery, never the old one again.

usage: popd_append_identity_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import os
import poplib
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402
import popd_clients_test as clients  # noqa: E402

FIRST = h.make_message("alice@example.org", "first", ["first body", "second line"])
LAST_FROM = b"From bob@example.org  Thu Nov 27 11:00:00 2026\n"
LAST_HEAD = b"From: <bob@example.org>\nSubject: last\nMessage-ID: <last@t>\n\n"

# name -> how the old last message ends (after its header block)
SHAPES = {
    "nonl": b"body line\nlast line without newline",
    "crlf": b"body line\r\nlast line without newline",
    "blanks": b"body line\nlast line  \t ",
    "empty1": b"body line\nlast line\n\n",
    "empty2": b"body line\nlast line\n\n\n",
    "quoted": b"body line\n>From the last line",
}


def new_message(tag):
    return h.make_message(f"new-{tag}@example.org", f"new {tag}", [f"fresh mail {tag}", "end"])


def pad(path):
    """What a careful MDA writes before its From_ line: the missing newline, then the empty
    line, unless the file already ends in one."""
    with open(path, "rb") as f:
        data = f.read()
    extra = b""
    if data and not data.endswith(b"\n"):
        extra += b"\n"
    if data and not (data + extra).endswith(b"\n\n") and not (data + extra).endswith(b"\n\r\n"):
        extra += b"\n"
    return extra


def deliver(spool, user, mda, message):
    path = os.path.join(spool, user)
    if mda == "padding":
        # pad() reads the file before the lock: nothing else writes to it in this test.
        h.mda_append(spool, user, pad(path) + message)
    elif mda == "procmail":
        # An empty rcfile: procmail delivers to $DEFAULT under its own dotlock + fcntl lock,
        # appending its message as it is (it does not look at how the file ends).
        subprocess.run(["procmail", "SLEEP=1", f"DEFAULT={path}", "/dev/null"], input=message,
                       check=True, timeout=60)
    else:  # "plain": dotlock + fcntl, no padding
        h.mda_append(spool, user, message)


def glued(shape, mda):
    """Does this delivery glue text onto the old last message (a From_ line that does not
    follow an empty line is body text)?"""
    return mda != "padding" and not SHAPES[shape].endswith(b"\n\n")


def session_view(port, user):
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    p.user(user)
    p.pass_(f"{user}-pw")
    uidls = [l.split()[1] for l in p.uidl()[1]]
    sizes = [int(l.split()[1]) for l in p.list()[1]]
    p.quit()
    return uidls, sizes


def shapes_times_deliveries(env, c):
    ix = env.indexer
    port = env.popd.port
    for shape, tail in SHAPES.items():
        for mda in ("padding", "procmail", "plain"):
            user = f"{shape}-{mda}"[:30]
            ix.add_account(user, f"{user}-pw")
            with open(ix.mailbox(user), "wb") as f:
                f.write(FIRST + LAST_FROM + LAST_HEAD + tail)
            os.chmod(ix.mailbox(user), 0o600)
            before_uidls, before_sizes = session_view(port, user)
            name = f"{shape} + {mda}"
            if not c.check(f"{name}: two messages before", len(before_uidls) == 2,
                           str(before_uidls)):
                continue
            deliver(ix.spool, user, mda, new_message(user))
            uidls, sizes = session_view(port, user)
            if glued(shape, mda):
                c.check(f"{name}: the delivery is glued onto the old last message, whose UIDL "
                        "changes with it", len(uidls) == 2 and uidls[0] == before_uidls[0]
                        and uidls[1] != before_uidls[1], f"{before_uidls} -> {uidls}")
            else:
                c.check(f"{name}: the old messages keep their UIDLs and sizes, the new one is "
                        "third", len(uidls) == 3 and uidls[:2] == before_uidls
                        and sizes[:2] == before_sizes, f"{before_uidls} {before_sizes} -> "
                        f"{uidls} {sizes}")


def dele_across_delivery(env, c):
    """DELE the old last message (no final newline), a padding MDA delivers while the session
    is open, QUIT commits the deletion."""
    ix = env.indexer
    for shape in ("nonl", "crlf", "empty1"):
        user = f"dele-{shape}"
        ix.add_account(user, f"{user}-pw")
        with open(ix.mailbox(user), "wb") as f:
            f.write(FIRST + LAST_FROM + LAST_HEAD + SHAPES[shape])
        os.chmod(ix.mailbox(user), 0o600)
        p = poplib.POP3("127.0.0.1", env.popd.port, timeout=10)
        p.user(user)
        p.pass_(f"{user}-pw")
        first_uidl = p.uidl(1).split()[2]
        p.dele(2)
        new = new_message(user)
        t = threading.Thread(target=deliver, args=(ix.spool, user, "padding", new))
        t.start()
        t.join()
        try:
            reply = p.quit()
        except poplib.error_proto as e:
            reply = e.args[0]
        c.check(f"dele {shape}: QUIT after a delivery that completed the last line is +OK",
                reply.startswith(b"+OK"), repr(reply))
        with open(ix.mailbox(user), "rb") as f:
            left = h.split_mbox(f.read())
        c.check(f"dele {shape}: the mailbox holds the first and the new message, nothing else",
                [h.wire(m) for m in left] == [h.wire(FIRST[FIRST.index(b"\n") + 1:-1]),
                                              h.wire(new[new.index(b"\n") + 1:-1])],
                repr(left))
        uidls, _ = session_view(env.popd.port, user)
        c.check(f"dele {shape}: the first message kept its UIDL", uidls[:1] == [first_uidl],
                f"{first_uidl} vs {uidls}")


def real_clients(env, c):
    """fetchmail, mpop, getmail6 with UIDL state across a delivery that completes the last
    line of a mailbox."""
    ix = env.indexer
    for name, cls in (("fetchmail", clients.Fetchmail), ("mpop", clients.Mpop),
                      ("getmail", clients.Getmail)):
        if shutil.which(cls.binary) is None:
            c.check(f"{name} installed", False, f"{cls.binary} not on PATH")
            continue
        user = f"nonl-{name}"
        ix.add_account(user, f"{user}-pw")
        with open(ix.mailbox(user), "wb") as f:
            f.write(FIRST + LAST_FROM + LAST_HEAD + SHAPES["nonl"])
        os.chmod(ix.mailbox(user), 0o600)
        cl = cls(env, user)
        try:
            ok, r = cl.run()
            got = cl.delivered()
            c.check(f"{name}: first run fetches both messages", ok and len(got) == 2,
                    f"{len(got)} files, rc={r.returncode}\n{r.stderr[-1000:]!r}")
            new = new_message(user)
            deliver(ix.spool, user, "padding", new)
            ok, r = cl.run()
            after = cl.delivered()
            fresh = [m for n, m in after.items() if n not in got]
            c.check(f"{name}: after a delivery that completed the old last line, the next run "
                    "fetches exactly the new message", ok and len(after) == 3 and len(fresh) == 1
                    and clients.same_message(fresh[0], h.wire(new[new.index(b"\n") + 1:-1])),
                    f"{len(after)} files, {len(fresh)} new\n{r.stdout[-1500:]!r}")
        except clients.GetmailRace as e:
            c.skip(f"{name}: the remaining runs", f"getmail6's lost-SIGCHLD race ({e})")


def run(env, c):
    shapes_times_deliveries(env, c)
    dele_across_delivery(env, c)
    real_clients(env, c)


if __name__ == "__main__":
    sys.exit(h.run_main(__doc__, "poplar-popd-append-", run))
