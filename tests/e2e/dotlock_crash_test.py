#!/usr/bin/env python3
"""A crash must not stall mail delivery (issue 15): poplar-indexer SIGKILLed at each expunge
fault point while it holds the mailbox's dotlock; MDAs that wait on that lock must deliver within
a few seconds of the restart, and nothing may be lost or duplicated.

Each round:
  1. starts poplar-indexer with POPLAR_FAULT=<point>:1 and commits the deletion of 1-2 messages
     through maildrop_client; the indexer SIGKILLs itself at that step of the expunge. For the
     recovery.* points the first kill is at expunge.after_plan, and the next start is killed at
     that step of the start-up recovery's replay (which holds the MDA locks too);
  2. starts two deliveries of a new message each: procmail (dotlock + fcntl, LOCKSLEEP=1) and
     `dotlockfile -l -r -1 -i 1` + lockf + append + `dotlockfile -u` (Postfix local's order);
     where the kill left the dotlock (every point up to expunge.after_truncate, and every
     recovery point), both must still be waiting 1.5 s later: procmail breaks a lock only
     after 1024 s, dotlockfile after 5 min;
  3. restarts poplar-indexer without a fault and asserts that both deliveries complete within
     --max-wait-s (5) of the restart, then that the mailbox holds every message delivered or
     originally there exactly once, minus those the expunge deleted (all of them for every point
     after the plan is recorded, none for expunge.after_journal).
At the end the mbox must be byte for byte the survivors in file order and parse strictly.

--pid-namespace (root): each indexer runs in a new PID namespace (`unshare --pid --fork
--mount-proc`) as PID 2, so the restarted indexer has exactly its dead predecessor's PID, as in
a restarted container: kill(pid, 0) says "alive" for the dead writer's PID, so only the
incarnation (start time, boot id) in the lock tells them apart. The dotlockfile delivery then uses
-p (liblockfile's own dead-PID check, fooled by the reused PID, so it waits too).

usage: dotlock_crash_test.py --indexer P --client P --poplarctl P --poplar-mbox P
                             [--pid-namespace] [--max-wait-s S] [--points P,P] [--keep]
Exit code 77 (skipped) for --pid-namespace when not root or unshare cannot make a namespace.
"""
import argparse
import fcntl
import os
import pwd
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import expunge_fault_test as eft  # noqa: E402  (new_indexer(), message(), parse_client)
import poplar_harness as h  # noqa: E402

# The start-up recovery's replay holds the MDA locks too: each of its points is reached by a
# first kill at FIRST_KILL (a plan recorded, nothing rewritten), then a kill in the recovery.
FIRST_KILL = "expunge.after_plan"
POINTS = eft.POINTS + eft.RECOVERY_POINTS
DELETES = {p: eft.DELETES.get(p, eft.DELETES[FIRST_KILL]) for p in POINTS}
KILLED = (-signal.SIGKILL, 128 + signal.SIGKILL)  # unshare passes the shell's 137 on
# The expunge holds the MDA locks from the journal to the truncate; Finish runs after release.
LOCK_LEFT = {"expunge.after_journal", "expunge.after_plan", "expunge.mid_rewrite",
             "expunge.before_truncate", "expunge.after_truncate"} | set(eft.RECOVERY_POINTS)


class NamespacedIndexer(h.Indexer):
    """poplar-indexer as PID 2 of a new PID namespace (PID 1 is a shell: a namespace's init
    ignores its own SIGKILL, which the fault points send). Signals go to the indexer itself."""

    def command(self):
        return ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child", "sh", "-c",
                '"$@"; exit $?', "sh", *super().command()]

    def indexer_pid(self):
        """The indexer's PID as seen from here: unshare -> sh -> poplar-indexer."""
        pid = self.proc.pid
        for _ in range(2):
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    kids = f.read().split()
            except OSError:
                return None
            if not kids:
                return None
            pid = int(kids[0])
        return pid

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        pid = self.indexer_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Delivery(threading.Thread):
    """One message delivered by a real MDA; `done` is the monotonic time it returned."""

    def __init__(self, kind, mbox, tag, dotlock_pid_check):
        super().__init__(daemon=True)
        self.kind, self.mbox, self.tag = kind, mbox, tag
        self.pid_check = dotlock_pid_check
        self.body = eft.message(tag, body_from=(kind != "procmail"))
        self.done = None
        self.error = None
        self.proc = None
        self.killed = False

    def _run(self, argv, stdin=None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL)
        self.proc.communicate(stdin, timeout=120)
        if self.proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} exited with {self.proc.returncode}"
                               + (" (killed: it was still waiting)" if self.killed else ""))

    def kill(self):
        """Ends a delivery that is still waiting (the test has failed already)."""
        self.killed = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()

    def run(self):
        try:
            if self.kind == "procmail":
                # LOCKSLEEP: seconds between procmail's dotlock attempts (8 by default).
                self._run(["procmail", "LOCKSLEEP=1", "SLEEP=1", f"DEFAULT={self.mbox}",
                           "/dev/null"], self.body)
            else:
                argv = ["dotlockfile", "-l", "-r", "-1", "-i", "1"]
                if self.pid_check:
                    argv.append("-p")
                self._run(argv + [self.mbox + ".lock"])
                try:
                    with open(self.mbox, "ab") as f:
                        fcntl.lockf(f, fcntl.LOCK_EX)
                        f.write(self.body)
                        f.flush()
                        os.fsync(f.fileno())
                        fcntl.lockf(f, fcntl.LOCK_UN)
                finally:
                    subprocess.run(["dotlockfile", "-u", self.mbox + ".lock"], check=False)
            self.done = time.monotonic()
        except Exception as e:  # reported by the main thread
            self.error = e
            self.done = time.monotonic()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--indexer", required=True)
    ap.add_argument("--poplarctl", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--poplar-mbox", required=True)
    ap.add_argument("--pid-namespace", action="store_true")
    ap.add_argument("--max-wait-s", type=float, default=5.0)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--points", default=",".join(POINTS),
                    help="comma-separated expunge fault points, in order (default: all)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    points = args.points.split(",")
    if not set(points) <= set(POINTS):
        ap.error(f"unknown points {sorted(set(points) - set(POINTS))}")
    random.seed(args.seed)
    if args.pid_namespace:
        if os.geteuid() != 0:
            print("SKIPPED: --pid-namespace needs root")
            return 77
        r = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                           capture_output=True)
        if r.returncode != 0:
            print(f"SKIPPED: unshare cannot make a PID namespace: {r.stderr!r}")
            return 77
    print(f"seed {args.seed}, {'PID namespace' if args.pid_namespace else 'plain'}")

    root = tempfile.mkdtemp(prefix="poplar-dotlock-crash-")
    ix = eft.new_indexer(NamespacedIndexer if args.pid_namespace else h.Indexer, args, root)
    os.chmod(ix.spool, 0o2775)
    mbox = os.path.join(ix.spool, "alice")
    lock = mbox + ".lock"
    bodies = {}  # tag -> bytes of every message ever in the mailbox
    with open(mbox, "wb") as f:
        for i in range(1, 21):
            bodies[f"init{i}"] = eft.message(f"init{i}")
            f.write(bodies[f"init{i}"])
    os.chmod(mbox, 0o660)
    if os.geteuid() == 0:
        os.chown(mbox, pwd.getpwnam(eft.MBOX_OWNER).pw_uid, 8)
    failures = h.Failures()
    fail = failures.fail
    expected = set(bodies)  # tags that must be in the mailbox, once each
    seq = 0
    stopped_at = None

    def client(*extra):
        return subprocess.run([args.client, "--socket", ix.socket, "--user", "alice", "--password",
                               "pw", "--show-message-id", *extra], capture_output=True, text=True,
                              timeout=60)

    def tags_of(msgs):
        return [m[2].strip("<>").split("@")[0] for m in msgs]

    try:
        ix.start()
        ix.add_account("alice", "pw")
        for point in points:
            first = point if point in eft.POINTS else FIRST_KILL
            ix.stop()
            ix.start(fault=f"{first}:1")
            msgs, _ = eft.parse_client(client().stdout)
            if not msgs:
                fail(f"{point}: no snapshot")
                stopped_at = point
                break
            chosen = sorted(random.sample(range(1, len(msgs) + 1), min(len(msgs), 2)))
            r = client("--delete", ",".join(map(str, chosen)))
            msgs_d, _ = eft.parse_client(r.stdout)
            doomed = {tags_of(msgs_d)[n - 1] for n in chosen if n <= len(msgs_d)}
            try:
                ix.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            if ix.proc.returncode not in KILLED:
                fail(f"{first}: the indexer was not killed at the fault point "
                     f"(exit {ix.proc.returncode})")
                stopped_at = point
                break
            if point != first:
                try:  # start-up: the first kill's lock goes, the recovery locks and is killed
                    ix.start(fault=f"{point}:1", timeout=60.0)
                except RuntimeError:
                    pass
                if ix.proc.poll() not in KILLED:
                    fail(f"{point}: the recovery was not killed there (exit {ix.proc.poll()})")
                    stopped_at = point
                    break
            if point in LOCK_LEFT:
                try:
                    with open(lock) as f:
                        left = f.read()
                except OSError:
                    left = None
                if left is None:
                    fail(f"{point}: the killed indexer left no dotlock: the scenario did not happen")
                elif args.pid_namespace and not left.startswith("2 "):
                    # The restarted indexer is PID 2 of its namespace again.
                    fail(f"{point}: the dead indexer's lock names no PID 2 ({left!r}): "
                         "the PID-reuse scenario did not happen")
            deliveries = []
            for kind in ("procmail", "dotlockfile"):
                seq += 1
                d = Delivery(kind, mbox, f"{kind}{seq}", dotlock_pid_check=args.pid_namespace)
                bodies[d.tag] = d.body
                deliveries.append(d)
                d.start()
            time.sleep(1.5)
            if point in LOCK_LEFT:
                for d in deliveries:
                    if d.done is not None:
                        fail(f"{point}: {d.kind} did not wait for the dead indexer's dotlock "
                             f"({d.error or 'delivered'}): the scenario did not happen")
            restart = time.monotonic()
            # Start-up: the dead incarnation's dotlock goes, then recovery. (A recovery that
            # cannot lock waits lock_timeout_ms, 20 s, before serving: allow for it, so that a
            # stall is reported as such.)
            ix.start(timeout=60.0)
            deadline = restart + args.max_wait_s + 5.0
            for d in deliveries:
                d.join(timeout=max(0.0, deadline - time.monotonic()))
            stalled = [d for d in deliveries if d.done is None]
            for d in deliveries:
                if d in stalled:
                    fail(f"{point}: {d.kind} still waiting "
                         f"{time.monotonic() - restart:.1f} s after the restart")
                elif d.error:
                    fail(f"{point}: {d.kind} failed: {d.error}")
                else:
                    waited = max(0.0, d.done - restart)
                    if waited > args.max_wait_s:
                        fail(f"{point}: {d.kind} delivered {waited:.1f} s after the restart "
                             f"(limit {args.max_wait_s} s)")
                expected.add(d.tag)
            if stalled:
                for d in stalled:
                    d.kill()
                    d.join(timeout=10)
                stopped_at = point
                break  # what follows would only measure the stall again
            if DELETES[point]:
                expected -= doomed
            after, _ = eft.parse_client(client().stdout)
            present = tags_of(after)
            dups = sorted({t for t in present if present.count(t) > 1})
            if dups:
                fail(f"{point}: duplicated {dups}")
            if set(present) != expected:
                fail(f"{point}: lost {sorted(expected - set(present))}, "
                     f"unexpected {sorted(set(present) - expected)}")
            print(f"ok    {point}: deleted {sorted(doomed) if DELETES[point] else 'nothing'}; "
                  + ", ".join(f"{d.kind} "
                              + (f"{d.done - restart:+.2f} s" if d.done else "never")
                              for d in deliveries)
                  + f" from the restart; {len(present)} messages")
            sys.stdout.flush()
        if stopped_at is None:  # else the rounds stopped at a failure
            ix.stop()
            ix.start()
            final, _ = eft.parse_client(client().stdout)
            ix.stop()
            with open(mbox, "rb") as f:
                data = f.read()
            order = tags_of(final)
            if data != b"".join(bodies[t] for t in order if t in bodies):
                fail("the final mbox is not byte for byte the survivors in file order")
            if set(order) != expected or len(order) != len(expected):
                fail("the final snapshot differs from the expected messages")
            r = subprocess.run([args.poplar_mbox, "--check", mbox], capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"poplar-mbox --check: {r.stdout[-500:]} {r.stderr[-500:]}")
            if os.path.exists(lock):
                fail("a dotlock is left at the end")
    except Exception as e:
        fail(f"harness: {type(e).__name__}: {e}")
    return failures.finish(root, args.keep, [ix], args.seed)


if __name__ == "__main__":
    sys.exit(main())
