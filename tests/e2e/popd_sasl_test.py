#!/usr/bin/env python3
"""End-to-end: AUTH SCRAM-SHA-256 (RFC 5802/7677) against poplar-popd and poplar-indexer.

A SCRAM client written here from RFC 5802 (hashlib/hmac only) logs in over the plain port and
checks the server's signature; a wrong password and an unknown user both fail at the proof
with -ERR [AUTH], the unknown user's challenge looking like a real one (stable fake salt);
'*' cancels; a forged nonce is refused. Then mpop, a real client, fetches with
`auth scram-sha-256` (keep + UIDL: a second run fetches nothing). Last, APOP and SASL
CRAM-MD5 with a per-account secret set and removed with poplarctl.

usage: popd_sasl_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import base64
import hashlib
import hmac
import os
import poplib
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402

PW = "scram pencil"


def b64(b):
    return base64.b64encode(b).decode()


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=15)
        self.f = self.s.makefile("rb")
        self.greeting = self.line()

    def line(self):
        return self.f.readline().decode()

    def send(self, text):
        self.s.sendall(text.encode() + b"\r\n")

    def close(self):
        self.s.close()


def scram_login(port, user, password, forge_nonce=False):
    """Returns (final reply line, server_signature_ok, challenge dict)."""
    c = Conn(port)
    cnonce = b64(os.urandom(18))
    first_bare = f"n={user},r={cnonce}"
    c.send("AUTH SCRAM-SHA-256 " + b64(("n,," + first_bare).encode()))
    line = c.line()
    if not line.startswith("+ "):
        c.close()
        return line, False, {}
    server_first = base64.b64decode(line[2:].strip()).decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    nonce = attrs["r"]
    if forge_nonce:
        nonce = cnonce + "forged"
    salt = base64.b64decode(attrs["s"])
    it = int(attrs["i"])
    without_proof = f"c=biws,r={nonce}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, it)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    c.send(b64((without_proof + ",p=" + b64(proof)).encode()))
    line = c.line()
    sig_ok = False
    if line.startswith("+ "):
        server_final = base64.b64decode(line[2:].strip()).decode()
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        want = "v=" + b64(hmac.new(server_key, auth_message, hashlib.sha256).digest())
        sig_ok = server_final == want
        c.send("")
        line = c.line()
        if line.startswith("+OK"):
            c.send("STAT")
            line = line + c.line()
    c.send("QUIT")
    c.close()
    return line, sig_ok, {"salt": attrs["s"], "i": it, "nonce_prefix_ok": attrs["r"].startswith(cnonce)}


def run(env, c):
    port = env.popd.port
    env.indexer.add_account("carol", PW)
    env.genmbox("carol", 5)
    want = h.expected_messages(env.indexer.mailbox("carol"))

    caps = Conn(port)
    caps.send("CAPA")
    lines = []
    while True:
        l = caps.line()
        lines.append(l)
        if l.startswith(".") or l.startswith("-ERR"):
            break
    caps.close()
    c.check("CAPA offers SASL SCRAM-SHA-256", any(l.startswith("SASL ") and "SCRAM-SHA-256" in l for l in lines))

    line, sig_ok, ch = scram_login(port, "carol", PW)
    c.check("SCRAM login: +OK after the client's empty answer, then STAT",
            line.startswith("+OK maildrop has 5 messages") and
            f"+OK 5 {sum(len(m) for m in want)}" in line, repr(line))
    c.check("SCRAM: the server's signature verifies (it knows the verifier)", sig_ok)
    c.check("SCRAM: the server nonce extends the client's", ch.get("nonce_prefix_ok"))
    c.check(f"SCRAM: iteration count at least 4096 ({ch.get('i')})", ch.get("i", 0) >= 4096)

    line, sig_ok, _ = scram_login(port, "carol", "wrong")
    c.check("SCRAM wrong password: -ERR [AUTH]", line.startswith("-ERR [AUTH]"), repr(line))
    line, _, ch1 = scram_login(port, "nobody-here", "x")
    _, _, ch2 = scram_login(port, "nobody-here", "y")
    c.check("SCRAM unknown user: challenged like a real one, then -ERR [AUTH]",
            line.startswith("-ERR [AUTH]") and ch1.get("i") == ch.get("i"), repr(line))
    c.check("SCRAM unknown user: the fake salt is stable", ch1.get("salt") == ch2.get("salt"))
    line, _, _ = scram_login(port, "carol", PW, forge_nonce=True)
    c.check("SCRAM with a nonce that is not the server's: -ERR", line.startswith("-ERR"), repr(line))

    k = Conn(port)
    k.send("AUTH SCRAM-SHA-256")
    plus = k.line()
    k.send("*")
    c.check("SCRAM '*' cancels", plus.startswith("+ ") and k.line().startswith("-ERR"))
    k.close()

    # mpop with auth scram-sha-256: everything once, then nothing.
    rc = os.path.join(env.root, "mpoprc")
    box = os.path.join(env.root, "mpop.mbox")
    with open(rc, "w") as f:
        f.write(f"account test\nhost 127.0.0.1\nport {port}\nuser carol\npassword {PW}\n"
                f"tls off\nauth scram-sha-256\nkeep on\ndelivery mbox {box}\n"
                f"uidls_file {env.root}/mpop.uidls\n")
    os.chmod(rc, 0o600)
    r1 = subprocess.run(["mpop", "-C", rc, "-a", "-q"], capture_output=True, timeout=60)
    got = open(box, "rb").read() if os.path.exists(box) else b""
    c.check("mpop auth scram-sha-256 fetches all 5 messages",
            r1.returncode == 0 and got.count(b"\nFrom ") + got.startswith(b"From ") == 5,
            r1.stderr.decode()[:300])
    r2 = subprocess.run(["mpop", "-C", rc, "-a", "-q"], capture_output=True, timeout=60)
    got2 = open(box, "rb").read() if os.path.exists(box) else b""
    c.check("mpop second run (UIDL) fetches nothing", r2.returncode == 0 and got2 == got, r2.stderr.decode()[:300])
    # APOP and CRAM-MD5 (popd started with apop: true): opt-in per account.
    secret = "apop secret 7"
    r = env.indexer.ctl("accounts", "apop", "carol", "--password-stdin", stdin=secret + "\n")
    c.check("poplarctl accounts apop sets the secret", r.returncode == 0, r.stderr)
    g1 = Conn(port).greeting
    g2 = Conn(port).greeting
    ts1 = g1[g1.find("<"):g1.find(">") + 1]
    c.check("the greeting carries an APOP timestamp, unique per connection",
            ts1.startswith("<") and "@" in ts1 and g1 != g2, g1 + g2)
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    c.check("APOP with the secret logs in", p.apop("carol", secret).startswith(b"+OK"))
    c.check("... and the maildrop is there", p.stat()[0] == len(want))
    p.quit()
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        p.apop("carol", "wrong secret")
        ok = False
    except poplib.error_proto as e:
        ok = str(e).startswith("b'-ERR [AUTH]")
    c.check("APOP with a wrong secret: -ERR [AUTH]", ok)
    p.quit()
    env.indexer.add_account("dan", "dan password")
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        p.apop("dan", "dan password")  # no secret set: APOP cannot work, not even with the password
        ok = False
    except poplib.error_proto as e:
        ok = str(e).startswith("b'-ERR [AUTH]")
    c.check("APOP for an account without a secret: -ERR [AUTH]", ok)
    p.quit()
    r = subprocess.run(["curl", "-s", "--login-options", "AUTH=CRAM-MD5", "-u", f"carol:{secret}",
                        f"pop3://127.0.0.1:{port}/2"], capture_output=True, timeout=30)
    c.check("curl AUTH=CRAM-MD5 with the secret retrieves message 2 byte-exact",
            r.returncode == 0 and r.stdout == want[1], f"rc={r.returncode}")
    r = env.indexer.ctl("accounts", "apop", "carol", "--remove")
    c.check("poplarctl accounts apop --remove", r.returncode == 0, r.stderr)
    p = poplib.POP3("127.0.0.1", port, timeout=10)
    try:
        p.apop("carol", secret)
        ok = False
    except poplib.error_proto:
        ok = True
    c.check("after --remove APOP no longer works", ok)
    p.quit()
    c.check("the indexer and popd logs hold no password or secret",
            all(x not in env.popd.log_text(100000) and x not in env.indexer.log_text()
                for x in (PW, secret)))


if __name__ == "__main__":
    sys.exit(h.run_main(__doc__, "poplar-popd-sasl-", run, extra="apop: true\n"))
