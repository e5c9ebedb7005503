#!/usr/bin/env python3
"""Nothing lost: the expunge killed at every step while a real MDA delivers (reliability.md §6).

Starts the real poplar-indexer on a temp spool, with an account made by poplarctl. A background
MDA loop delivers uniquely numbered messages the way Debian MDAs do: `dotlockfile -l` (liblockfile,
alternately with -p, which breaks a dotlock whose PID is dead: exactly what a killed indexer
leaves behind), then a classic fcntl lock (lockf) on the mbox, append, fsync, unlock,
`dotlockfile -u`; every third delivery takes the fcntl lock only (Postfix virtual(8)). Each round:
  1. starts poplar-indexer with POPLAR_FAULT=<point>:1, so the indexer SIGKILLs itself at that
     step of the expunge;
  2. maildrop_client opens a session (snapshot, with each message's Message-ID) and commits the
     deletion of 1-3 random messages; the indexer dies;
  3. restarts poplar-indexer without a fault (start-up recovery) and takes a new snapshot;
     when the kill left a plan to replay, it first restarts it with POPLAR_FAULT=recovery.<step>
     so that the recovery itself is killed part-way (a crash during crash recovery).
It checks after every round that the deletion took effect entirely or not at all (all of it for
every point after the plan is recorded, none for expunge.after_journal), that no message is
duplicated, that every message delivered before the round is there unless deleted, and that the
UIDL of every surviving message never changes. At the end (MDA stopped, indexer restarted) the
mbox must be byte for byte the survivors in delivery order, parse strictly (poplar-mbox --check),
and keep its owner and mode.

usage: expunge_fault_test.py --indexer P --poplarctl P --client P --poplar-mbox P
                             [--rounds N] [--random] [--seed S] [--keep]
The short run (ctest) cycles through every fault point; the long run is --rounds 2000 --random.
"""
import argparse
import fcntl
import os
import pwd
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

POINTS = ["expunge.after_journal", "expunge.after_plan", "expunge.mid_rewrite",
          "expunge.before_truncate", "expunge.after_truncate", "expunge.before_done",
          "expunge.after_done"]
DELETES = {p: p != "expunge.after_journal" for p in POINTS}  # does the deletion survive the kill
# A second crash, during the start-up recovery that finishes the plan (same steps, own names).
# Tried after a first kill that leaves the mailbox needing a replay.
RECOVERY_POINTS = ["recovery.mid_rewrite", "recovery.before_truncate", "recovery.after_truncate"]
NEEDS_REPLAY = {"expunge.after_plan", "expunge.mid_rewrite", "expunge.before_truncate"}


def message(tag, body_from=True):
    # procmail quotes every body line that starts with "From " (">From"), so the messages it
    # delivers leave that line out: the test must know the exact bytes that land in the file.
    quoted = "From quoted? no: this line is body text after a non-blank line\n" if body_from else ""
    return (f"From mda-{tag}@example.org  Thu Nov 26 10:00:00 2026\n"
            f"Subject: message {tag}\nMessage-ID: <{tag}@test>\n\n"
            f"body of {tag}\n{quoted}"
            f"{'x' * random.randint(0, 3000)}\n\n").encode()


# Who owns the mailbox (check_owner.spool_owner): as root, another user than the indexer's.
MBOX_OWNER = "nobody" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name


def new_indexer(cls, args, root):
    """The indexer of the fault tests: the mailbox belongs to MBOX_OWNER (the name alice is no
    system user), and an expunge waits long enough for the MDA's lock."""
    return cls(args.indexer, args.poplarctl, root, spool_owner=MBOX_OWNER,
               extra_config="lock_timeout_ms: 20000\n")


class Mda(threading.Thread):
    """Delivers numbered messages as Debian's MDAs do: every fourth with procmail itself
    (dotlock + fcntl, its compiled-in strategies), the others with dotlockfile + lockf like
    Postfix local, one in three of those with the kernel lock only like Postfix virtual."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path = path
        self.lock = threading.Lock()
        self.delivered = []  # (tag, bytes) in file order
        self.stop_flag = threading.Event()
        self.error = None
        self.seq = 0

    def run(self):
        try:
            while not self.stop_flag.is_set():
                self.seq += 1
                tag = f"mda{self.seq}"
                if self.seq % 4 == 0:
                    body = message(tag, body_from=False)
                    # With an empty rcfile procmail delivers to $DEFAULT under its own locks
                    # (SLEEP: seconds between lock attempts, 8 by default). It counts as
                    # delivered once procmail has returned; one MDA thread keeps file order.
                    subprocess.run(["procmail", "SLEEP=1", f"DEFAULT={self.path}", "/dev/null"],
                                   input=body, check=True, timeout=300)
                    with self.lock:
                        self.delivered.append((tag, body))
                    time.sleep(random.uniform(0.0, float(os.environ.get("MDA_SLEEP_S", "0.05"))))
                    continue
                body = message(tag)
                # Every third delivery takes only the kernel lock, as Postfix virtual(8) does.
                dotlock = self.seq % 3 != 0
                argv = ["dotlockfile", "-l", "-r", "-1", "-i", "1"]
                if self.seq % 2:
                    argv.append("-p")
                if dotlock:
                    subprocess.run(argv + [self.path + ".lock"], check=True)
                try:
                    with open(self.path, "ab") as f:
                        fcntl.lockf(f, fcntl.LOCK_EX)
                        f.write(body)
                        f.flush()
                        os.fsync(f.fileno())
                        with self.lock:
                            self.delivered.append((tag, body))
                        fcntl.lockf(f, fcntl.LOCK_UN)
                finally:
                    if dotlock:
                        subprocess.run(["dotlockfile", "-u", self.path + ".lock"], check=False)
                time.sleep(random.uniform(0.0, float(os.environ.get("MDA_SLEEP_S", "0.05"))))
        except Exception as e:  # reported by the main thread
            self.error = e

    def snapshot(self):
        with self.lock:
            return list(self.delivered)


def parse_client(out):
    """[(number, uidl, message_id)] and the commit line from maildrop_client's output."""
    msgs, commit = [], None
    for line in out.splitlines():
        if line.startswith("msg "):
            parts = line.split()
            msgs.append((int(parts[1]), parts[4], parts[5] if len(parts) > 5 else "-"))
        elif line.startswith("commit "):
            commit = line
    return msgs, commit


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--indexer", required=True)
    ap.add_argument("--poplarctl", required=True)
    ap.add_argument("--client", required=True)
    ap.add_argument("--poplar-mbox", required=True)
    ap.add_argument("--rounds", type=int, default=len(POINTS) * 5)
    ap.add_argument("--random", action="store_true", help="random fault points")
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    random.seed(args.seed)
    print(f"seed {args.seed}, {args.rounds} rounds")

    root = tempfile.mkdtemp(prefix="poplar-fault-")
    ix = new_indexer(h.Indexer, args, root)
    os.chmod(ix.spool, 0o2775)
    mbox = os.path.join(ix.spool, "alice")
    originals = [(f"init{i}", message(f"init{i}")) for i in range(1, 31)]
    with open(mbox, "wb") as f:
        for _, b in originals:
            f.write(b)
    os.chmod(mbox, 0o660)
    if os.geteuid() == 0:  # not the indexer's own uid, so keeping the owner means something
        os.chown(mbox, pwd.getpwnam(MBOX_OWNER).pw_uid, 8)
    st0 = os.stat(mbox)
    failures = h.Failures()
    fail = failures.fail
    kills = 0
    recovery_kills = 0
    mda = Mda(mbox)

    def client(*extra, timeout=120):
        r = subprocess.run([args.client, "--socket", ix.socket, "--user", "alice", "--password",
                            "pw", "--show-message-id", *extra], capture_output=True, text=True,
                           timeout=timeout)
        return r

    uidl_of = {}  # message id -> UIDL, first seen
    gone = set()  # message ids deleted for good
    try:
        ix.start()
        ix.add_account("alice", "pw")
        mda.start()
        for rnd in range(args.rounds):
            point = random.choice(POINTS) if args.random else POINTS[rnd % len(POINTS)]
            ix.stop()
            ix.start(fault=f"{point}:1")
            before = {tag for tag, _ in mda.snapshot()}
            snap = client()
            msgs, _ = parse_client(snap.stdout)
            if snap.returncode != 0:
                fail(f"round {rnd}: no snapshot: {snap.stdout} {snap.stderr}")
                break
            if not msgs:
                # Long runs can delete faster than the MDA delivers: an empty mailbox is right
                # (every check below still holds); give the MDA time before the next round.
                print(f"      round {rnd}: mailbox empty, waiting for deliveries")
                time.sleep(2.0)
                continue
            k = min(len(msgs), random.randint(1, 3))
            chosen = sorted(random.sample(range(1, len(msgs) + 1), k))
            # The session that deletes: a new snapshot (numbers may have grown), then Commit.
            r = client("--delete", ",".join(map(str, chosen)))
            msgs_d, commit = parse_client(r.stdout)
            ids = {msgs_d[n - 1][2] for n in chosen if n <= len(msgs_d)}
            try:
                ix.proc.wait(timeout=30)
                died = ix.proc.returncode == -signal.SIGKILL
            except subprocess.TimeoutExpired:
                died = False
            if died:
                kills += 1
                expect_deleted = DELETES[point]
            else:
                expect_deleted = commit is not None and commit.startswith("commit OK")
            ix.stop()
            # While the indexer is down the MDA keeps delivering: liblockfile (-p) breaks the
            # dead indexer's dotlock, so mail lands on a half-compacted or untruncated file.
            time.sleep(random.uniform(0.0, float(os.environ.get("FAULT_DOWN_S", "1.0"))))
            if died and point in NEEDS_REPLAY:
                rpoint = (random.choice(RECOVERY_POINTS) if args.random
                          else RECOVERY_POINTS[(rnd // len(POINTS)) % len(RECOVERY_POINTS)])
                try:
                    ix.start(fault=f"{rpoint}:1")  # the recovery may finish before that step
                    ix.stop()
                except RuntimeError:
                    if ix.proc.returncode != -signal.SIGKILL:
                        raise
                    kills += 1
                    recovery_kills += 1
                    print(f"      round {rnd}: recovery killed at {rpoint}")
                    time.sleep(random.uniform(0.0, float(os.environ.get("FAULT_DOWN_S", "1.0"))))
            ix.start()  # recovery
            after = client()
            msgs_a, _ = parse_client(after.stdout)
            present = [m[2] for m in msgs_a]
            if len(present) != len(set(present)):
                fail(f"round {rnd} ({point}): duplicated messages: "
                     f"{sorted(x for x in present if present.count(x) > 1)}")
            still = ids & set(present)
            if expect_deleted and still:
                fail(f"round {rnd} ({point}): deleted messages still there: {sorted(still)}")
            if not expect_deleted and still != ids:
                fail(f"round {rnd} ({point}): messages lost by a failed expunge: "
                     f"{sorted(ids - still)}")
            if expect_deleted:
                gone |= {i.strip("<>").split("@")[0] for i in ids}
            want = ({t for t, _ in originals} | before) - gone
            have = {p.strip("<>").split("@")[0] for p in present}
            if not want <= have:
                fail(f"round {rnd} ({point}): missing {sorted(want - have)[:10]}")
            for _, uidl, mid in msgs_a:
                if uidl_of.setdefault(mid, uidl) != uidl:
                    fail(f"round {rnd} ({point}): UIDL of {mid} changed "
                         f"{uidl_of[mid]} -> {uidl}")
            if mda.error:
                fail(f"MDA: {mda.error}")
                break
            print(f"ok    round {rnd}: {point}, deleted {sorted(ids)}, "
                  f"{'killed' if died else 'not killed: ' + str(commit)}; {len(present)} messages")
            sys.stdout.flush()
            if len(failures) > 5:
                break
        mda.stop_flag.set()
        mda.join(timeout=60)
        ix.stop()
        ix.start()
        final = client()
        msgs_f, _ = parse_client(final.stdout)
        ix.stop()
        with open(mbox, "rb") as f:
            data = f.read()
        expected = b"".join(b for t, b in originals + mda.snapshot() if t not in gone)
        if data != expected:
            fail(f"final mbox differs from the survivors in delivery order "
                 f"({len(data)} vs {len(expected)} bytes)")
        if len(msgs_f) != len([1 for t, _ in originals + mda.snapshot() if t not in gone]):
            fail("final snapshot count differs")
        r = subprocess.run([args.poplar_mbox, "--check", mbox], capture_output=True, text=True)
        if r.returncode != 0:
            fail(f"poplar-mbox --check: {r.stdout[-500:]} {r.stderr[-500:]}")
        st = os.stat(mbox)
        if (st.st_ino, st.st_mode, st.st_uid, st.st_gid) != (st0.st_ino, st0.st_mode, st0.st_uid, st0.st_gid):
            fail("inode, owner or mode changed")
        if args.rounds >= len(POINTS) * 3 and recovery_kills == 0:
            fail("no start-up recovery was ever killed: the recovery.* fault points are not reached")
        print(f"{kills} kills ({recovery_kills} during recovery), {len(gone)} messages deleted, "
              f"{len(mda.snapshot())} delivered, {len(msgs_f)} in the final mailbox")
    except Exception as e:
        fail(f"harness: {type(e).__name__}: {e}")
    finally:
        mda.stop_flag.set()
    return failures.finish(root, args.keep, [ix], args.seed)


if __name__ == "__main__":
    sys.exit(main())
