#!/usr/bin/env python3
"""End-to-end: poplar-popd behind a load balancer speaking the PROXY protocol (v2 and v1).

popd listens with listen { proxy_protocol: true proxy_trusted_networks: "127.0.0.0/8" }; the
test plays HAProxy from 127.0.0.1 and claims client addresses from the documentation ranges.
Checked: a v2 header (and one sent in the same packet as the first command, or as the TLS
ClientHello on the implicit-TLS port) and a v1 header open normal sessions; the claimed address is what popd uses for the plaintext policy
(plaintext_auth_networks), the per-address connection cap, its session log line and the
indexer's session list; a LOCAL header (health check) keeps the balancer's address; garbage
instead of a header, or a header that never completes, is closed without a greeting; and a
popd whose trusted networks do not include the connecting address refuses it.

usage: popd_proxy_test.py --indexer P --popd P --poplarctl P --poplar-mbox P --genmbox P
"""
import os
import socket
import ssl
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import poplar_harness as h  # noqa: E402
import popd_tls_test as tls  # noqa: E402

ALLOWED = "203.0.113.9"    # in plaintext_auth_networks
OTHER = "198.51.100.5"     # not: USER/PASS is refused before TLS


def v2(src, sport, dst="192.0.2.1", dport=110, command=0x21, family=0x11):
    if command == 0x20:
        return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    payload = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return b"\r\n\r\n\x00\r\nQUIT\n" + bytes([command, family]) + struct.pack("!H", len(payload)) + payload


def v1(src, sport, dst="192.0.2.1", dport=110):
    return f"PROXY TCP4 {src} {dst} {sport} {dport}\r\n".encode()


def connect(port, header):
    raw = h.Raw(port)
    raw.send(header)
    return raw


class TlsOverProxy:
    """A TLS client whose ClientHello leaves in the same packet as the PROXY header (as HAProxy
    forwards it), driven through memory BIOs."""

    def __init__(self, port, header):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = tls.client_context().wrap_bio(self.inc, self.out, server_hostname="localhost")
        try:
            self.tls.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.sock.sendall(header + self.out.read())  # header + ClientHello, one send
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._pump()
        self.sock.sendall(self.out.read())
        self.buf = b""

    def _pump(self):
        pending = self.out.read()
        if pending:
            self.sock.sendall(pending)
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("closed")
        self.inc.write(data)

    def line(self):
        while b"\r\n" not in self.buf:
            try:
                self.buf += self.tls.read(65536)
            except ssl.SSLWantReadError:
                self._pump()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def cmd(self, text):
        self.tls.write(text.encode() + b"\r\n")
        self.sock.sendall(self.out.read())
        return self.line()

    def close(self):
        self.sock.close()


def implicit_tls(env, c):
    """pop3s behind the balancer: the header, then the TLS handshake popd terminates."""
    cert, key = tls.make_cert(env.root, "proxy", "localhost")
    popd, tls_port = tls.start_popd(env.args, env.root, env.indexer, cert, key, name="popd-proxy-tls",
                                    listen_extra='proxy_protocol: true proxy_trusted_networks: "127.0.0.0/8" ')
    try:
        client = TlsOverProxy(tls_port, v2("192.0.2.77", 50000, dport=995))
        c.check("pop3s: header + ClientHello in one packet, handshake and greeting",
                client.line().startswith(b"+OK"))
        c.check("pop3s: login over TLS",
                client.cmd("USER alice").startswith(b"+OK") and client.cmd("PASS alice pw").startswith(b"+OK"))
        client.cmd("QUIT")
        client.close()
        time.sleep(0.2)
        c.check("pop3s: the session line names the client",
                "session user=alice peer=192.0.2.77" in popd.log_text(1 << 20), popd.log_text()[-600:])
    finally:
        popd.stop()


def configure(env):
    text = open(env.popd.config).read()
    text = text.replace('listen { address: "127.0.0.1:0" }',
                        'listen { address: "127.0.0.1:0" proxy_protocol: true '
                        'proxy_trusted_networks: "127.0.0.0/8" proxy_header_timeout_ms: 1000 }')
    text = text.replace("max_connections_per_ip: 10000", "max_connections_per_ip: 2")
    text += f'plaintext_auth_networks: "{ALLOWED}/32"\n'
    with open(env.popd.config, "w") as f:
        f.write(text)


def body(env, c):
    env.indexer.add_account("alice", "alice pw")
    env.genmbox("alice", 3)
    port = env.popd.port

    # v2: a whole session from the claimed address.
    raw = connect(port, v2(ALLOWED, 40000))
    greeting = raw.line()
    c.check(f"v2: greeting after the header ({greeting!r})", greeting.startswith(b"+OK"))
    c.check("v2: USER/PASS allowed for the claimed address (plaintext_auth_networks)",
            raw.cmd("USER alice").startswith(b"+OK") and raw.cmd("PASS alice pw").startswith(b"+OK"))
    sessions = env.indexer.ctl("sessions", "list").stdout
    c.check(f"v2: the indexer's session shows the client address ({sessions.strip()!r})", ALLOWED in sessions)
    c.check("v2: STAT", raw.cmd("STAT").startswith(b"+OK 3 "))
    raw.cmd("QUIT")
    raw.close()
    time.sleep(0.2)
    c.check("v2: popd's session line names the client",
            f"session user=alice peer={ALLOWED}" in env.popd.log_text(1 << 20), env.popd.log_text()[-600:])

    # The header and the first command in one packet: nothing of the client's is eaten.
    raw = connect(port, v2(ALLOWED, 40001) + b"CAPA\r\n")
    c.check("v2 + CAPA in one packet: greeting", raw.line().startswith(b"+OK"))
    c.check("v2 + CAPA in one packet: CAPA answered", raw.line().startswith(b"+OK") and b"UIDL" in raw.multi())
    raw.close()

    # v1, from an address that may not log in without TLS.
    raw = connect(port, v1(OTHER, 5555))
    c.check("v1: greeting after the header", raw.line().startswith(b"+OK"))
    reply = raw.cmd("USER alice")
    c.check(f"v1: the plaintext policy sees the claimed address ({reply!r})", reply.startswith(b"-ERR"))
    raw.close()

    # LOCAL: the balancer's own check; its address (127.0.0.1) is used.
    raw = connect(port, v2("0.0.0.0", 0, command=0x20))
    c.check("v2 LOCAL: greeting", raw.line().startswith(b"+OK"))
    raw.close()

    # The per-address cap counts claimed addresses: two from one client, the third refused,
    # another client still served.
    held = [connect(port, v2("192.0.2.50", 1000 + i)) for i in range(2)]
    for r in held:
        r.line()
    third = connect(port, v2("192.0.2.50", 1002))
    line = third.line()
    c.check(f"cap: a third connection from one client is refused ({line!r})",
            line.startswith(b"-ERR [SYS/TEMP]"))
    other = connect(port, v2("192.0.2.51", 1003))
    c.check("cap: another client is served meanwhile", other.line().startswith(b"+OK"))
    for r in held + [third, other]:
        r.close()

    # No header: closed, no greeting, logged.
    raw = connect(port, b"USER alice\r\n")
    c.check("no header: closed without a greeting", raw.closed_within(5) and raw.buf == b"")
    raw = connect(port, v1(ALLOWED, 1)[:20])
    c.check("incomplete header: closed after proxy_header_timeout_ms", raw.closed_within(5) and raw.buf == b"")
    log = env.popd.log_text(1 << 20)
    c.check("the bad header is logged", "closed: not a PROXY header" in log)
    c.check("the timeout is logged", "no complete PROXY header in time" in log)

    implicit_tls(env, c)

    # A popd that trusts other networks: 127.0.0.1 may not claim addresses.
    strict = h.Popd(env.args.popd, env.root, env.indexer.socket, name="popd-strict")
    text = open(strict.config).read().replace(
        'listen { address: "127.0.0.1:0" }',
        'listen { address: "127.0.0.1:0" proxy_protocol: true proxy_trusted_networks: "10.0.0.0/8" }')
    with open(strict.config, "w") as f:
        f.write(text)
    strict.start()
    try:
        raw = connect(strict.port, v2(ALLOWED, 40002))
        c.check("untrusted balancer: closed without a greeting", raw.closed_within(5) and raw.buf == b"")
        time.sleep(0.2)
        c.check("untrusted balancer: logged", "not in listen.proxy_trusted_networks" in strict.log_text())
    finally:
        strict.stop()


if __name__ == "__main__":
    sys.exit(h.run_main(__doc__, "poplar-popd-proxy-", body, before_start=configure))
