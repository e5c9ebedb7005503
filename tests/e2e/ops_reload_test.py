#!/usr/bin/env python3
"""Reload and lifecycle (issue 14): SIGHUP to both daemons, again and again, while clients run
POP3 sessions without pause drops no session (every login, RETR and QUIT succeeds, every
session's log line ends end=quit); what each reload applied and what needs a restart is logged;
--print-config's output is itself a valid configuration."""
import os
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

USERS = 4
THREADS = 6
SESSIONS_PER_THREAD = 30


def body(env, c):
    for i in range(USERS):
        env.genmbox(f"user{i}", 15, seed=i + 1)
        env.indexer.add_account(f"user{i}", f"password-{i}")

    errors = []
    done = [0]
    lock = threading.Lock()

    def client(t):
        for n in range(SESSIONS_PER_THREAD):
            # Each thread its own user per round (threads share users in turn, so an [IN-USE]
            # between two of the test's own clients is possible: retried, never counted as a
            # drop; a session that started must end with its QUIT).
            u = (t + n) % USERS
            for _ in range(50):
                try:
                    p = h.login(env.popd.port, f"user{u}", f"password-{u}")
                    break
                except Exception as e:  # noqa: BLE001
                    if "IN-USE" not in str(e):
                        with lock:
                            errors.append(f"login user{u}: {e}")
                        return
                    time.sleep(0.02)
            else:
                continue
            try:
                count, _ = p.stat()
                p.uidl()
                for m in range(1, min(count, 3) + 1):
                    p.retr(m)
                p.quit()
                with lock:
                    done[0] += 1
            except Exception as e:  # noqa: BLE001
                with lock:
                    errors.append(f"session user{u}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
    for t in threads:
        t.start()
    hups = 0
    with open(env.popd.config, "a") as f:
        f.write('log { level: "info" }\n')
    with open(env.indexer.config, "a") as f:
        f.write('log { level: "warning" }\nlock_timeout_ms: 9000\n')
    while any(t.is_alive() for t in threads) and hups < 100:
        env.popd.proc.send_signal(signal.SIGHUP)
        env.indexer.proc.send_signal(signal.SIGHUP)
        hups += 1
        time.sleep(0.02)
    for t in threads:
        t.join()
    c.check(f"{hups} SIGHUPs to each daemon while sessions ran", hups >= 5, hups)
    c.check("no session dropped or failed", not errors, errors[:5])
    c.check("sessions completed", done[0] >= THREADS * SESSIONS_PER_THREAD // 2, done[0])
    c.check("both daemons still running",
            env.popd.proc.poll() is None and env.indexer.proc.poll() is None)
    time.sleep(0.3)  # the last session lines reach the log after the client's QUIT returned
    plog = env.popd.log_text(1 << 22)
    ends = [l.split(" end=")[1].split()[0] for l in plog.splitlines() if "session user=user" in l]
    c.check("every logged-in session ended with QUIT",
            len(ends) >= done[0] and all(e == "quit" for e in ends),
            {e: ends.count(e) for e in set(ends)})
    c.check("popd logged its reloads", "SIGHUP: configuration reloaded" in plog, plog[-500:])
    ilog = env.indexer.log_text(1 << 22)
    c.check("indexer names what needs a restart",
            "SIGHUP: changed, needs a restart: lock_timeout_ms" in ilog, ilog[-800:])
    # The first reload applies log.level: warning, after which its own Info line is not written.
    c.check("indexer applied the log level: no Info line after the first reload",
            "SIGHUP: configuration reloaded" not in ilog, ilog[-800:])

    # --print-config: a complete, valid configuration.
    for binary, config, name in ((env.args.indexer, env.indexer.config, "indexer"),
                                 (env.args.popd, env.popd.config, "popd")):
        r = subprocess.run([binary, "--config", config, "--print-config"], capture_output=True,
                           text=True, timeout=20)
        path = os.path.join(env.root, f"{name}.effective.conf")
        with open(path, "w") as f:
            f.write(r.stdout)
        r2 = subprocess.run([binary, "--config", path, "--check-config"], capture_output=True,
                            text=True, timeout=20)
        c.check(f"{name} --print-config output is valid", r.returncode == 0 and
                r2.returncode == 0 and "is valid" in r2.stdout, r.stderr + r2.stderr)
        c.check(f"{name} --print-config writes defaults out",
                ("lease_wait_ms: 2000" if name == "indexer" else "autologout_s: 600") in r.stdout,
                r.stdout[:300])


if __name__ == "__main__":
    sys.exit(h.run_main(__doc__, "poplar-ops-reload-", body))
