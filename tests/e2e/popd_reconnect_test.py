#!/usr/bin/env python3
"""End-to-end, issue 15: a dropped connection must not lock the user out.

A mobile client logs in, sends STAT and drops the connection without QUIT (a plain close, which
sends a FIN, or SO_LINGER 0, which sends an RST), then reconnects at once and logs in again:
CYCLES times, while a few other clients run ordinary sessions in the background. Before the
liveness probes the reconnect's login could reach the indexer before the old session's Close
and get -ERR [IN-USE]; now it must never. A real concurrent second session must still get
-ERR [IN-USE] at once (median under 200 ms, every one well under the indexer's 2 s wait bound),
and the first session goes on undisturbed.

usage: popd_reconnect_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
       [--cycles=N] [--lease-wait-ms=N]

--lease-wait-ms=0 runs the indexer as before the probes (a leased maildrop is [IN-USE] at
once): the test must then fail, which shows it can.
"""
import os
import socket
import statistics
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

MOBILE, MOBILE_PW = "mobile", "mobile-secret"
BACKGROUND = {"bg1": "bg1-secret", "bg2": "bg2-secret", "bg3": "bg3-secret"}
CYCLES = 1000


class Client:
    """A minimal POP3 client on a raw socket: lines in, commands out, no QUIT unless asked."""

    def __init__(self, port, timeout=15.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError(f"connection closed; got {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def multi(self):
        while self.line() != b".":
            pass

    def abort(self, reset):
        """Drops the connection without QUIT: an RST with SO_LINGER 0, else a FIN."""
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()


def login(port, user, password):
    """Connects and logs in (USER and PASS pipelined, as fast as a client can); returns the
    client and the PASS reply."""
    c = Client(port)
    greeting = c.line()
    if not greeting.startswith(b"+OK"):
        raise ConnectionError(f"greeting {greeting!r}")
    c.sock.sendall(f"USER {user}\r\nPASS {password}\r\n".encode())
    user_reply = c.line()
    if not user_reply.startswith(b"+OK"):
        return c, user_reply
    return c, c.line()


def background(port, user, password, stop, counts, errors):
    """Ordinary sessions (login, STAT, UIDL, LIST, QUIT) back to back until `stop`."""
    while not stop.is_set():
        try:
            c, reply = login(port, user, password)
            if not reply.startswith(b"+OK"):
                errors.append(f"{user}: PASS -> {reply!r}")
                c.abort(False)
                continue
            for cmd, multi in (("STAT", False), ("UIDL", True), ("LIST", True)):
                c.send(cmd)
                if not c.line().startswith(b"+OK"):
                    errors.append(f"{user}: {cmd} refused")
                elif multi:
                    c.multi()
            c.send("QUIT")
            if not c.line().startswith(b"+OK"):
                errors.append(f"{user}: QUIT refused")
            c.abort(False)
            counts[user] = counts.get(user, 0) + 1
        except (OSError, ConnectionError) as e:
            errors.append(f"{user}: {e}")


def run(env, c):
    port = env.popd.port
    env.genmbox(MOBILE, 20, seed=3)
    env.indexer.add_account(MOBILE, MOBILE_PW)
    for i, (user, pw) in enumerate(BACKGROUND.items()):
        env.genmbox(user, 30, seed=10 + i)
        env.indexer.add_account(user, pw)

    stop = threading.Event()
    counts, bg_errors = {}, []
    threads = [threading.Thread(target=background, args=(port, u, pw, stop, counts, bg_errors))
               for u, pw in BACKGROUND.items()]
    for t in threads:
        t.start()

    in_use, other, stat_bad = [], [], 0
    started = time.monotonic()
    try:
        for i in range(CYCLES):
            cl, reply = login(port, MOBILE, MOBILE_PW)
            if reply.startswith(b"-ERR [IN-USE]"):
                in_use.append(i)
            elif not reply.startswith(b"+OK"):
                other.append((i, reply))
            else:
                cl.send("STAT")
                if not cl.line().startswith(b"+OK"):
                    stat_bad += 1
            # Abruptly, and straight into the next cycle's connect: half RST, half FIN.
            cl.abort(reset=i % 2 == 0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    took = time.monotonic() - started
    print(f"{CYCLES} abort-and-reconnect cycles in {took:.1f}s; background sessions: {counts}")
    c.check(f"{CYCLES} reconnects after an abort (RST or FIN): no -ERR [IN-USE]", not in_use,
            f"{len(in_use)} refused [IN-USE], at cycles {in_use[:20]}")
    c.check("every reconnect logged in", not other, f"{len(other)} failed: {other[:5]}")
    c.check("STAT answered in every session", stat_bad == 0, f"{stat_bad} refused")
    c.check("background sessions ran and never failed",
            sum(counts.values()) > 0 and not bg_errors,
            f"counts {counts}, errors {bg_errors[:5]}")

    # A real second session is refused at once, and the first goes on undisturbed.
    first, reply = login(port, MOBILE, MOBILE_PW)
    c.check("first session logs in", reply.startswith(b"+OK"), repr(reply))
    times, replies = [], []
    for _ in range(7):
        second = Client(port)
        second.line()
        second.send(f"USER {MOBILE}")
        second.line()
        t0 = time.monotonic()
        second.send(f"PASS {MOBILE_PW}")
        replies.append(second.line())
        times.append(time.monotonic() - t0)
        second.abort(False)
    ms = [round(t * 1000, 1) for t in times]
    print(f"[IN-USE] answer times (ms): {ms}")
    c.check("a concurrent second session gets -ERR [IN-USE]",
            all(r.startswith(b"-ERR [IN-USE]") for r in replies), repr(replies))
    c.check("... at once: median under 200 ms, none near the 2 s wait bound",
            statistics.median(times) < 0.2 and max(times) < 1.0, f"{ms}")
    first.send("STAT")
    c.check("the first session is undisturbed", first.line().startswith(b"+OK"))
    first.send("QUIT")
    c.check("... and QUITs", first.line().startswith(b"+OK"))
    first.abort(False)
    # And after that QUIT the maildrop is free at once (the lease ends before +OK).
    again, reply = login(port, MOBILE, MOBILE_PW)
    c.check("login right after QUIT", reply.startswith(b"+OK"), repr(reply))
    again.abort(True)


def own_flag(name):
    """The value of --NAME=VALUE (removed from argv, the harness does not know it), or None."""
    for a in sys.argv:
        if a.startswith(f"--{name}="):
            sys.argv.remove(a)
            return a.split("=", 1)[1]
    return None


if __name__ == "__main__":
    CYCLES = int(own_flag("cycles") or CYCLES)
    wait_ms = own_flag("lease-wait-ms")

    def configure(env):
        if wait_ms is not None:
            with open(env.indexer.config, "a") as f:
                f.write(f"lease_wait_ms: {int(wait_ms)}\n")

    sys.exit(h.run_main(__doc__, "poplar-reconnect-", run, before_start=configure))
