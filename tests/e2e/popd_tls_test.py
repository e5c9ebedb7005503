#!/usr/bin/env python3
"""End-to-end: poplar-popd over TLS, with Python's ssl and poplib and with curl.

Starts the real poplar-indexer and poplar-popd with a throw-away certificate (openssl req),
STLS on the plain port and implicit TLS on a pop3s port, no plaintext networks, and checks:
implicit TLS (RFC 8314) and STLS (RFC 2595) logins with byte-exact RETR; CAPA before and after
STLS (STLS only before, USER only after); USER/PASS refused in the clear; the STLS
command-injection case (commands sent after STLS in the same packet never run); TLS below 1.2
refused; garbage on the pop3s port; curl pop3s:// and curl --ssl-reqd pop3:// (STLS); and a
certificate replaced and re-read on SIGHUP while an older session goes on.

usage: popd_tls_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import hashlib
import os
import poplib
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

PW = {"alice": "alice tls pw", "bob": "bob-tls"}


def make_cert(root, name, cn):
    cert = os.path.join(root, f"{name}.crt")
    key = os.path.join(root, f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", f"/CN={cn}"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # a self-signed test certificate
    return ctx


def peer_cert_sha256(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with client_context().wrap_socket(raw) as s:
            der = s.getpeercert(binary_form=True)
            s.recv(100)  # the greeting
            return hashlib.sha256(der).hexdigest()


def file_sha256_of_cert(path):
    pem = open(path).read()
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def start_popd(args, root, indexer, cert, key, listen_extra="", name="popd-tls"):
    """Starts a popd with TLS on both ports and finds both ports from its stdout."""
    return h.start_tls_popd(args.popd, root, indexer.socket, cert, key, name=name,
                            extra='limits { preauth_timeout_s: 5 }\n', listen_extra=listen_extra)


def retr_all_exact(c, name, pop, want):
    ok = pop.stat()[0] == len(want)
    for i, w in enumerate(want, 1):
        resp, lines, octets = pop.retr(i)
        got = b"\r\n".join(lines) + b"\r\n"
        ok = ok and got == w and octets == len(w)
    c.check(name, ok)


def run(args):
    c = h.Checks()
    root = tempfile.mkdtemp(prefix="poplar-popd-tls-")
    indexer = h.Indexer(args.indexer, args.poplarctl, root)
    popd = None
    try:
        indexer.start()
        for user, pw in PW.items():
            indexer.add_account(user, pw)
            subprocess.run([sys.executable, args.genmbox, "--messages", "6", "--user", user,
                            "--seed", str(len(user)), indexer.mailbox(user)], check=True)
        cert_a, key_a = make_cert(root, "a", "poplar-a.test")
        cert_b, key_b = make_cert(root, "b", "poplar-b.test")
        live_cert = os.path.join(root, "live.crt")
        live_key = os.path.join(root, "live.key")
        shutil.copy(cert_a, live_cert)
        shutil.copy(key_a, live_key)
        popd, tls_port = start_popd(args, root, indexer, live_cert, live_key)
        port = popd.port
        want = h.expected_messages(indexer.mailbox("alice"))

        # Implicit TLS.
        p = poplib.POP3_SSL("127.0.0.1", tls_port, context=client_context(), timeout=10)
        caps = p.capa()
        c.check("pop3s: CAPA offers USER and not STLS", "USER" in caps and "STLS" not in caps, str(caps))
        p.user("alice")
        p.pass_(PW["alice"])
        retr_all_exact(c, "pop3s: every message byte-exact", p, want)
        c.check("pop3s: QUIT", p.quit().startswith(b"+OK"))

        # STLS, and what CAPA says before and after.
        p = poplib.POP3("127.0.0.1", port, timeout=10)
        before = p.capa()
        c.check("plain port: CAPA offers STLS and not USER (no plaintext network)",
                "STLS" in before and "USER" not in before, str(before))
        try:
            p.user("alice")
            refused = False
        except poplib.error_proto as e:
            refused = str(e).startswith("b'-ERR [AUTH]")
        c.check("plain port: USER in the clear is refused with -ERR [AUTH]", refused)
        p.stls(client_context())
        after = p.capa()
        c.check("after STLS: CAPA offers USER and no longer STLS",
                "USER" in after and "STLS" not in after, str(after))
        p.user("alice")
        p.pass_(PW["alice"])
        retr_all_exact(c, "after STLS: every message byte-exact", p, want)
        p.quit()

        # The injection: commands sent in the clear in the same packet as STLS never run.
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = raw.makefile("rb")
        f.readline()
        raw.sendall(b"STLS\r\nUSER alice\r\nCAPA\r\n")
        c.check("injection: STLS answered +OK", f.readline().startswith(b"+OK"))
        tls = client_context().wrap_socket(raw)
        tf = tls.makefile("rb")
        tls.sendall(f"PASS {PW['alice']}\r\n".encode())
        line = tf.readline()
        c.check("injection: the USER sent after STLS in clear did not run (PASS says USER first)",
                line.startswith(b"-ERR") and b"USER" in line, repr(line))
        tls.sendall(b"NOOP\r\n")
        c.check("injection: nothing else pending from the clear-text part (NOOP is the next answer)",
                tf.readline().startswith(b"-ERR"))
        tls.sendall(b"QUIT\r\n")
        tf.readline()
        tls.close()

        # TLS below 1.2 is refused by the server (the client here is willing).
        old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        old.check_hostname = False
        old.verify_mode = ssl.CERT_NONE
        try:
            old.set_ciphers("DEFAULT:@SECLEVEL=0")
            old.minimum_version = ssl.TLSVersion.TLSv1
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as r2:
                with old.wrap_socket(r2) as s2:
                    s2.recv(10)
            c.check("TLS 1.1 is refused", False, "handshake succeeded")
        except (ssl.SSLError, ConnectionError, OSError):
            c.check("TLS 1.1 is refused", True)

        # Garbage on the pop3s port: the connection ends, others are served.
        with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as g:
            g.sendall(b"USER alice\r\nPASS x\r\n" + os.urandom(2000))
            g.settimeout(10)
            try:
                while g.recv(4096):
                    pass
                closed = True
            except OSError:
                closed = True
        c.check("garbage on pop3s: connection closed", closed)

        # curl: implicit TLS and STLS.
        list_s = subprocess.run(["curl", "-sk", f"pop3s://bob:{PW['bob']}@127.0.0.1:{tls_port}/"],
                                capture_output=True, timeout=30)
        want_bob = h.expected_messages(indexer.mailbox("bob"))
        expect_list = b"".join(b"%d %d\r\n" % (i, len(m)) for i, m in
                               enumerate(want_bob, 1))
        c.check("curl pop3s:// list", list_s.returncode == 0 and list_s.stdout == expect_list,
                repr(list_s.stdout[:200]) + list_s.stderr.decode()[:200])
        one = subprocess.run(["curl", "-sk", "--ssl-reqd", f"pop3://bob:{PW['bob']}@127.0.0.1:{port}/2"],
                             capture_output=True, timeout=30)
        c.check("curl --ssl-reqd pop3:// (STLS) retrieves message 2 byte-exact",
                one.returncode == 0 and one.stdout == want_bob[1],
                f"rc={one.returncode} {one.stderr.decode()[:200]}")
        for mech in ("PLAIN", "LOGIN"):
            r = subprocess.run(["curl", "-sk", "--login-options", f"AUTH={mech}",
                                f"pop3s://bob:{PW['bob']}@127.0.0.1:{tls_port}/3"], capture_output=True, timeout=30)
            c.check(f"curl AUTH={mech} over pop3s retrieves message 3 byte-exact",
                    r.returncode == 0 and r.stdout == want_bob[2], f"rc={r.returncode}")
            r = subprocess.run(["curl", "-sk", "--login-options", f"AUTH={mech}",
                                f"pop3s://bob:wrong@127.0.0.1:{tls_port}/3"], capture_output=True, timeout=30)
            c.check(f"curl AUTH={mech} with a wrong password is refused", r.returncode != 0 and not r.stdout)
        # SASL PLAIN by hand: initial response, cancel, bad base64.
        import base64
        raw = client_context().wrap_socket(socket.create_connection(("127.0.0.1", tls_port), timeout=10))
        rf = raw.makefile("rb")
        rf.readline()
        raw.sendall(b"AUTH PLAIN\r\n*\r\nAUTH PLAIN\r\n!!!\r\n")
        lines = [rf.readline() for _ in range(4)]
        c.check("AUTH PLAIN: '*' cancels and bad base64 is an error",
                lines[0].startswith(b"+ ") and lines[1].startswith(b"-ERR") and
                lines[2].startswith(b"+ ") and lines[3].startswith(b"-ERR"), repr(lines))
        ir = base64.b64encode(b"\0bob\0" + PW["bob"].encode())
        raw.sendall(b"AUTH PLAIN " + ir + b"\r\nSTAT\r\nQUIT\r\n")
        lines = [rf.readline() for _ in range(3)]
        c.check("AUTH PLAIN with an initial response logs in (STAT answers)",
                lines[0].startswith(b"+OK") and lines[1] == b"+OK %d %d\r\n" % (
                    len(want_bob), sum(len(m) for m in want_bob)), repr(lines))
        raw.close()
        plain = subprocess.run(["curl", "-s", f"pop3://bob:{PW['bob']}@127.0.0.1:{port}/"],
                               capture_output=True, timeout=30)
        c.check("curl pop3:// without TLS cannot log in", plain.returncode != 0 and not plain.stdout)

        # SIGHUP re-reads the certificate: new connections get B, an open session goes on.
        c.check("before SIGHUP the server shows certificate A",
                peer_cert_sha256(tls_port) == file_sha256_of_cert(cert_a))
        old_session = poplib.POP3_SSL("127.0.0.1", tls_port, context=client_context(), timeout=10)
        old_session.user("alice")
        old_session.pass_(PW["alice"])
        shutil.copy(cert_b, live_cert)
        shutil.copy(key_b, live_key)
        popd.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        seen_b = False
        while time.monotonic() < deadline and not seen_b:
            seen_b = peer_cert_sha256(tls_port) == file_sha256_of_cert(cert_b)
            if not seen_b:
                time.sleep(0.1)
        c.check("after SIGHUP new connections show certificate B", seen_b)
        c.check("the session opened before SIGHUP still works",
                old_session.stat()[0] == len(want) and old_session.quit().startswith(b"+OK"))
        # A broken key on SIGHUP keeps the running certificate.
        with open(live_key, "w") as k:
            k.write("not a key\n")
        popd.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "keeping the running configuration" not in popd.log_text():
            time.sleep(0.05)
        c.check("a SIGHUP with a broken key is refused with a log line",
                "keeping the running configuration" in popd.log_text())
        c.check("a SIGHUP with a broken key keeps serving certificate B",
                peer_cert_sha256(tls_port) == file_sha256_of_cert(cert_b))
        c.check("popd is still running", popd.proc.poll() is None)
    except Exception as e:
        import traceback
        traceback.print_exc()
        c.check("harness", False, f"{type(e).__name__}: {e}")
    finally:
        if popd:
            popd.stop()
        indexer.stop()
        h._stop_all()
        if c.failed:
            print("--- poplar-popd log (tail) ---\n" + (popd.log_text() if popd else ""))
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    return c.summary()


if __name__ == "__main__":
    sys.exit(run(h.arg_parser(__doc__).parse_args()))
