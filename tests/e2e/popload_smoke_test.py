"""popload against the real poplar-indexer and poplar-popd, about a second per mode, so the
benchmark's load generator cannot rot: session (plain, implicit TLS with AUTH PLAIN), download
(verified against the mbox, STLS with a window), a corrupted reference is caught, login with
--expect, idle with the server's memory (logged in, and held after the greeting), and the
loopback stream (plain and TLS).

usage: popload_smoke_test.py --popload P --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import os
import subprocess
import sys
import time

import poplar_harness as h

PASSWORD = "smoke-pw"


def fields(line):
    return dict(tok.split("=", 1) for tok in line.split() if "=" in tok)


def main():
    ap = h.arg_parser(__doc__)
    ap.add_argument("--popload", required=True)
    args = ap.parse_args()
    c = h.Checks()
    env = h.Env(args, "poplar-popload-smoke-")
    root = env.root
    started = time.monotonic()
    try:
        indexer = env.indexer
        indexer.start()
        users = [f"u{i:04d}" for i in range(4)]
        for u in users:
            env.genmbox(u, 10, seed=3)
        dl = os.path.join(indexer.spool, "dl")
        subprocess.run([sys.executable, args.genmbox, "--messages", "40", "--seed", "5", "--user", "dl",
                        "--body-median", "3000", "--attach-prob", "0.05", dl], check=True)
        for u in users + ["dl"]:
            indexer.add_account(u, PASSWORD)
        cert, key = os.path.join(root, "cert.pem"), os.path.join(root, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        popd, tls_port = h.start_tls_popd(args.popd, root, indexer.socket, cert, key, name="popd-smoke",
                                          extra='plaintext_auth_networks: "127.0.0.0/8"\n'
                                                'limits { max_connections_per_ip: 10000 }\n')
        pids = f"{popd.proc.pid},{indexer.proc.pid}"

        def run(name, mode, *extra, want_rc=0):
            argv = [args.popload, mode, "--password", PASSWORD, "--timeout", "20", *extra]
            r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            lines = [l for l in r.stdout.splitlines() if l.startswith("mode=")]
            f = fields(lines[-1]) if lines else {}
            c.check(name, r.returncode == want_rc and (want_rc == 2 or f.get("mode") == mode),
                    f"rc {r.returncode}, stdout {r.stdout!r}, stderr {r.stderr[-800:]!r}")
            return f

        plain = ["--port", str(popd.port)]
        tls = ["--port", str(tls_port), "--tls", "implicit"]
        f = run("session plain", "session", *plain, "--user", "u%04d", "--users", "4", "--conns", "4",
                "--duration", "1", "--server-pid", pids)
        c.check("session plain: sessions, no errors, server CPU measured",
                float(f.get("sessions", 0)) > 0 and f.get("errors") == "0" and f.get("server_cpu_pct") != "-", str(f))
        f = run("session implicit TLS with AUTH PLAIN", "session", *tls, "--auth", "plain", "--user", "u%04d",
                "--users", "4", "--conns", "2", "--duration", "1")
        c.check("session TLS: sessions, no errors", float(f.get("sessions", 0)) > 0 and f.get("errors") == "0", str(f))
        f = run("download verified against the mbox", "download", *plain, "--user", "dl", "--mbox", dl)
        c.check("download: all 40 exact", f.get("exact") == "40" and f.get("mismatch") == "0", str(f))
        f = run("download STLS, window 4, no verify", "download", "--port", str(popd.port), "--tls", "stls",
                "--user", "dl", "--no-verify", "--window", "4")
        c.check("download STLS: 40 messages", f.get("msgs") == "40" and float(f.get("MBps", 0)) > 0, str(f))
        corrupt = os.path.join(root, "corrupt.mbox")
        data = bytearray(open(dl, "rb").read())
        at = data.index(b"\nSubject: demo", len(data) // 2) + 10  # 'd' of one message's subject
        data[at] = ord("D")
        open(corrupt, "wb").write(bytes(data))
        f = run("download: a differing reference is reported", "download", *plain, "--user", "dl",
                "--mbox", corrupt, want_rc=1)
        c.check("download: exactly one mismatch", f.get("mismatch") == "1" and f.get("exact") == "39", str(f))
        f = run("login with --expect", "login", *plain, "--user", "dl", "--expect", "40")
        c.check("login: 40 UIDL and LIST lines", f.get("uidl_lines") == "40" and f.get("list_lines") == "40", str(f))
        run("login with a wrong --expect fails", "login", *plain, "--user", "dl", "--expect", "41", want_rc=1)
        f = run("idle plain", "idle", *plain, "--user", "u%04d", "--users", "4", "--conns", "4", "--duration", "0.3",
                "--server-pid", pids)
        c.check("idle: all alive, memory read", f.get("alive") == "4" and int(f.get("rss_before_kb", 0)) > 0, str(f))
        f = run("idle TLS", "idle", *tls, "--user", "u%04d", "--users", "4", "--conns", "4", "--duration", "0.3")
        c.check("idle TLS: all alive", f.get("alive") == "4", str(f))
        f = run("idle held after the greeting", "idle", *plain, "--no-login", "--conns", "20", "--duration", "0.3",
                "--server-pid", pids)
        c.check("idle --no-login: all answer CAPA", f.get("alive") == "20" and f.get("login") == "no", str(f))
        f = run("stream plain", "stream", "--mbox", dl, "--bytes", "2e7")
        c.check("stream plain: bytes moved", f.get("bytes") == "20000000", str(f))
        f = run("stream TLS", "stream", "--mbox", dl, "--bytes", "2e7", "--tls", "implicit", "--cert", cert,
                "--key", key)
        c.check("stream TLS: bytes moved", f.get("bytes") == "20000000", str(f))
        run("bad options are refused", "session", "--conns", "0", want_rc=2)
    except Exception as e:  # a broken harness is a failure, not a crash without a summary
        import traceback
        traceback.print_exc()
        c.check("harness", False, f"{type(e).__name__}: {e}")
    finally:
        h._stop_all()
        env.cleanup(c.failed > 0)
    print(f"took {time.monotonic() - started:.1f}s")
    return c.summary()


if __name__ == "__main__":
    sys.exit(main())
