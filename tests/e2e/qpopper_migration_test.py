#!/usr/bin/env python3
"""End-to-end: a Qpopper site switches to Poplar and no client downloads a message twice.

A "Qpopper" stand-in (a small POP3 server here, serving the spool with the UIDLs of the
independent implementation in tests/unit/qpopper_uidl_oracle_test.py, written from qpopper.md
§3) serves a spool whose messages Qpopper partly stamped with X-UIDL; fetchmail (keep, uidl) and
mpop (keep, UIDL file) fetch everything from it. The site switches: `poplarctl migrate check
--from qpopper` reports zero UIDLs that would change, the stand-in stops, poplar-indexer with
`uidl { scheme: "qpopper" }` and poplar-popd take its port, and the clients poll again with their
state: nothing is downloaded. Then the user deletes the oldest message from another client, and
two new messages arrive: a plain one, and one whose sender copied the deleted message's UIDL
into an X-UIDL header (the hiding attempt; the clients still remember that UIDL). The next poll
downloads exactly the two new messages, once each. The counts are printed.

usage: qpopper_migration_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import os
import poplib
import random
import shutil
import socket
import socketserver
import subprocess
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "unit"))
import poplar_harness as h  # noqa: E402
import qpopper_uidl_oracle_test as qp  # noqa: E402

USERS = {"fetchmail": "fetchy", "mpop": "mpoppy"}
MESSAGES = 24
DATES = ["Thu Nov 29 22:33:52 2001", "Mon Jan  5 04:03:02 2004", "Sat Dec  7 10:00 1996"]


def make_spool_messages(rng, user):
    """[(from_line, header, body)]: Qpopper-era mail, a third stamped with X-UIDL by Qpopper."""
    out = []
    for i in range(MESSAGES):
        from_line = ("From sender%d@example.org %s%s\n" % (i, rng.choice(DATES),
                     " remote from uucp" if i % 7 == 3 else "")).encode()
        header = []
        if i % 3 == 0:
            header.append("X-UIDL: %s" % "".join(rng.choice("ABCDEFGHJKabcdefgh0123456789#$%")
                                                   for _ in range(rng.choice([13, 20, 31]))))
        header += ["Received: from mx%d.example.org by mail.example.net" % (i % 4),
                   "Date: Thu, %d Nov 2001 22:33:52 +0000" % (1 + i % 28),
                   "From: <sender%d@example.org>" % i, "To: <%s@example.net>" % user,
                   "Subject: %s message %d" % (user, i),
                   "Message-ID: <%s.%d@example.org>" % (user, i)]
        if i % 5 == 1:
            header.append("Status: RO")
        if i % 4 == 2:
            header.insert(3, "Received: from relay by mx\n\tid %d; folded" % i)
        body = "".join("line %d of message %d\n" % (k, i) for k in range(1 + i % 6))
        if i % 6 == 0:
            body += ".starts with a dot\n"
        out.append((from_line, ("\n".join(header) + "\n").encode(), body.encode()))
    return out


def mbox_bytes(messages):
    return b"".join(f + hd + b"\n" + b + b"\n" for f, hd, b in messages)


class StandIn(socketserver.ThreadingTCPServer):
    """Serves each user's messages with Qpopper's UIDLs (the independent implementation)."""
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port, mailboxes):
        self.mailboxes = mailboxes  # user -> [(bytes served, uidl)]
        super().__init__(("127.0.0.1", port), StandInHandler)


class StandInHandler(socketserver.StreamRequestHandler):
    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def multiline(self, lines):
        for l in lines:
            self.wfile.write((b"." + l if l.startswith(b".") else l) + b"\r\n")
        self.wfile.write(b".\r\n")

    def handle(self):
        self.reply("+OK Qpopper (version 4.0.5) at stand-in starting.")
        user, msgs = None, None
        while True:
            line = self.rfile.readline()
            if not line:
                return
            words = line.decode("latin-1").strip().split()
            cmd, args = (words[0].upper(), words[1:]) if words else ("", [])
            if cmd == "CAPA":
                self.reply("+OK Capability list follows")
                self.multiline([b"TOP", b"USER", b"UIDL", b"RESP-CODES"])
            elif cmd == "USER" and args:
                user = args[0]
                self.reply("+OK Password required for %s." % user)
            elif cmd == "PASS" and user in self.server.mailboxes:
                msgs = self.server.mailboxes[user]
                self.reply("+OK %s has %d visible messages" % (user, len(msgs)))
            elif cmd == "QUIT":
                self.reply("+OK Pop server at stand-in signing off.")
                return
            elif msgs is None:
                self.reply("-ERR Unknown command or not logged in")
            elif cmd == "STAT":
                self.reply("+OK %d %d" % (len(msgs), sum(len(wire(m)) for m, _ in msgs)))
            elif cmd in ("LIST", "UIDL"):
                value = (lambda n: len(wire(msgs[n][0]))) if cmd == "LIST" else \
                    (lambda n: msgs[n][1])
                if args:
                    n = int(args[0]) - 1
                    self.reply("+OK %d %s" % (n + 1, value(n)))
                else:
                    self.reply("+OK")
                    self.multiline([("%d %s" % (n + 1, value(n))).encode()
                                    for n in range(len(msgs))])
            elif cmd in ("RETR", "TOP"):
                n = int(args[0]) - 1
                lines = msgs[n][0].split(b"\n")[:-1]
                if cmd == "TOP":
                    blank = lines.index(b"") if b"" in lines else len(lines)
                    lines = lines[:blank + 1 + int(args[1])]
                self.reply("+OK")
                self.multiline(lines)
            elif cmd in ("NOOP", "RSET", "DELE"):
                self.reply("+OK")  # the clients keep their mail: DELE is never sent here
            else:
                self.reply("-ERR Unknown command: %s" % cmd)


def wire(message):
    return message.replace(b"\n", b"\r\n")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Fetchmail:
    def __init__(self, root, user, port):
        self.dir = os.path.join(root, "client-fetchmail")
        self.out = os.path.join(self.dir, "out")
        os.makedirs(self.out)
        mda = os.path.join(self.dir, "deliver.sh")
        with open(mda, "w") as f:
            f.write(f'#!/bin/sh\nexec cat > "$(mktemp {self.out}/msg.XXXXXXXX)"\n')
        os.chmod(mda, 0o755)
        self.rc = os.path.join(self.dir, "fetchmailrc")
        with open(self.rc, "w") as f:
            f.write(f'poll 127.0.0.1 service {port} protocol POP3 uidl\n'
                    f'  user "{user}" password "{user}-pw" is "root" here\n'
                    f'  keep norewrite sslproto \'\' mda "{mda}"\n')
        os.chmod(self.rc, 0o600)

    def run(self):
        r = subprocess.run(["fetchmail", "-f", self.rc, "-i", os.path.join(self.dir, "ids"),
                            "-v", "--nodetach"], capture_output=True, timeout=60,
                           env=dict(os.environ, HOME=self.dir))
        return r.returncode in (0, 1), r

    def delivered(self):
        return [open(os.path.join(self.out, n), "rb").read() for n in sorted(os.listdir(self.out))]


class Mpop:
    def __init__(self, root, user, port):
        self.dir = os.path.join(root, "client-mpop")
        self.maildir = os.path.join(self.dir, "Maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, d))
        self.rc = os.path.join(self.dir, "mpoprc")
        with open(self.rc, "w") as f:
            f.write(f"account test\nhost 127.0.0.1\nport {port}\nuser {user}\n"
                    f"password {user}-pw\ntls off\nauth user\nkeep on\n"
                    f"delivery maildir {self.maildir}\n"
                    f"uidls_file {os.path.join(self.dir, 'uidls')}\n")
        os.chmod(self.rc, 0o600)

    def run(self):
        r = subprocess.run(["mpop", "-C", self.rc, "-a"], capture_output=True, timeout=60,
                           env=dict(os.environ, HOME=self.dir))
        return r.returncode == 0, r

    def delivered(self):
        out = []
        for d in ("new", "cur"):
            p = os.path.join(self.maildir, d)
            out += [open(os.path.join(p, n), "rb").read() for n in sorted(os.listdir(p))]
        return out


def message_ids(raws):
    ids = []
    for raw in raws:
        for line in raw.replace(b"\r\n", b"\n").split(b"\n"):
            if line.lower().startswith(b"message-id:"):
                ids.append(line.split(b":", 1)[1].strip().decode())
                break
        else:
            ids.append(None)
    return ids


def main():
    args = h.arg_parser(__doc__).parse_args()
    c = h.Checks()
    root = h.tempfile.mkdtemp(prefix="poplar-qpopper-migration-")
    port = free_port()
    ix = h.Indexer(args.indexer, args.poplarctl, root)
    with open(ix.config, "a") as f:
        f.write('uidl { scheme: "qpopper" }\n')
    popd = h.Popd(args.popd, root, ix.socket)
    with open(popd.config) as f:
        text = f.read()
    with open(popd.config, "w") as f:
        f.write(text.replace('listen { address: "127.0.0.1:0" }',
                             'listen { address: "127.0.0.1:%d" }' % port))
    rng = random.Random(16)
    clients = [n for n in USERS if shutil.which(n)]
    for n in USERS:
        if n not in clients:
            c.check(f"{n} installed", False, f"{n} not on PATH")
    served = {}
    for name, user in USERS.items():
        msgs = make_spool_messages(rng, user)
        with open(ix.mailbox(user), "wb") as f:
            f.write(mbox_bytes(msgs))
        uidls = qp.expected_uidls([(f_, hd) for f_, hd, _ in msgs], {})
        served[user] = [(hd + b"\n" + b, u) for (_, hd, b), u in zip(msgs, uidls)]
    counts = {}
    failed = False
    try:
        # 1. The Qpopper era: every message fetched once, UIDLs remembered.
        standin = StandIn(port, served)
        threading.Thread(target=standin.serve_forever, daemon=True).start()
        cl = {}
        for name in clients:
            cl[name] = {"fetchmail": Fetchmail, "mpop": Mpop}[name](root, USERS[name], port)
            ok, r = cl[name].run()
            got = message_ids(cl[name].delivered())
            counts[name] = [len(got)]
            c.check(f"{name}: fetches all {MESSAGES} messages from the Qpopper stand-in",
                    ok and len(got) == MESSAGES and len(set(got)) == MESSAGES,
                    f"rc={r.returncode} got {len(got)}\n{r.stderr.decode(errors='replace')[-800:]}")
        standin.shutdown()
        standin.server_close()

        # 2. Before the switch: the check says nothing would change.
        r = subprocess.run([args.poplarctl, "migrate", "check", "--from", "qpopper",
                            ix.spool], capture_output=True, text=True, timeout=60)
        c.check("migrate check --from qpopper: 0 UIDLs would change (exit 0)",
                r.returncode == 0 and "0 UIDLs would change" in r.stdout,
                f"rc={r.returncode}\n{r.stdout}\n{r.stderr}")
        r2 = subprocess.run([args.poplarctl, "migrate", "check", "--from", "qpopper", "--json",
                             ix.mailbox(USERS["mpop"])], capture_output=True, text=True,
                            timeout=60)
        c.check("migrate check --json: one object for the mailbox, nothing would change",
                r2.returncode == 0 and '"changed":0,' in r2.stdout
                and '"messages":%d,' % MESSAGES in r2.stdout, f"rc={r2.returncode}\n{r2.stdout}")

        # 3. The switch: Poplar on the same port, same spool.
        ix.start()
        for user in USERS.values():
            ix.add_account(user, f"{user}-pw")
        popd.start()
        for user in USERS.values():
            p = poplib.POP3("127.0.0.1", port, timeout=20)
            p.user(user)
            p.pass_(f"{user}-pw")
            got = [l.split()[1].decode() for l in p.uidl()[1]]
            p.quit()
            c.check(f"{user}: Poplar's UIDL list equals the Qpopper stand-in's",
                    got == [u for _, u in served[user]],
                    f"poplar {got[:4]}... qpopper {[u for _, u in served[user]][:4]}...")
        for name in clients:
            ok, r = cl[name].run()
            got = message_ids(cl[name].delivered())
            counts[name].append(len(got) - counts[name][0])
            c.check(f"{name}: first poll after the switch downloads nothing",
                    ok and len(got) == MESSAGES,
                    f"rc={r.returncode} total {len(got)}\n"
                    f"{r.stderr.decode(errors='replace')[-800:]}")

        # 4. The oldest message is deleted from another client; new mail arrives, one copying
        #    the deleted message's UIDL (which the clients still remember) into X-UIDL.
        for name in clients:
            user = USERS[name]
            p = poplib.POP3("127.0.0.1", port, timeout=20)
            p.user(user)
            p.pass_(f"{user}-pw")
            p.dele(1)
            p.quit()
            copied = served[user][0][1]
            h.mda_append(ix.spool, user, h.make_message(
                "new@example.org", f"{user} new plain", ["fresh mail"]))
            forged = h.make_message("spammer@example.org", f"{user} new forged", ["hidden?"])
            forged = forged.replace(b"\nFrom: ", b"\nX-UIDL: " + copied.encode() + b"\nFrom: ", 1)
            h.mda_append(ix.spool, user, forged)
        for name in clients:
            user = USERS[name]
            before = set(message_ids(cl[name].delivered()))
            ok, r = cl[name].run()
            got = message_ids(cl[name].delivered())
            new = [m for m in got if m not in before]
            counts[name].append(len(new))
            want = sorted([f"<{user}.new.plain@t>", f"<{user}.new.forged@t>"])
            c.check(f"{name}: the next poll downloads exactly the two new messages, the one "
                    "with a copied X-UIDL included",
                    ok and sorted(new) == want, f"new {new}\n"
                    f"{r.stderr.decode(errors='replace')[-800:]}")
            c.check(f"{name}: no message downloaded twice overall",
                    len(got) == len(set(got)), f"{len(got)} downloads, {len(set(got))} distinct")
        for name in clients:
            print(f"{name}: downloaded {counts[name][0]} from Qpopper, {counts[name][1]} on the "
                  f"first poll after the switch, {counts[name][2] if len(counts[name]) > 2 else '?'}"
                  " after two new deliveries (one with a copied X-UIDL); 0 twice")
    except Exception as e:
        import traceback
        traceback.print_exc()
        c.check("harness", False, f"{type(e).__name__}: {e}")
    finally:
        h._stop_all()
        failed = c.failed > 0
        if failed:
            print("--- popd log ---\n" + popd.log_text())
            print("--- indexer log ---\n" + ix.log_text())
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return c.summary()


if __name__ == "__main__":
    sys.exit(main())
