"""Shared harness of the poplar-popd end-to-end tests (popd_*_test.py).

Starts the real poplar-indexer and poplar-popd as processes on a temp spool (unix socket for the
indexer, port 0 for popd), adds accounts with poplarctl, and gives the tests what they compare
against: an independent mbox splitter and the POP3 wire form of a message, written here from
design.md §3 without reusing Poplar's C++ code.

Nothing here touches /var/mail or a fixed port; every process started is stopped on exit, also
when a check or the harness itself fails.
"""
import argparse
import atexit
import fcntl
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time


class Checks:
    """One line per check, a summary, and the exit code."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"ok    {name}")
        else:
            self.failed += 1
            print(f"FAIL  {name}" + (f"\n      {detail}" if detail else ""))
        sys.stdout.flush()
        return ok

    def skip(self, name, why):
        self.skipped += 1
        print(f"skip  {name}: {why}")
        sys.stdout.flush()

    def summary(self):
        print(f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped")
        return 1 if self.failed else 0


class Failures:
    """The fault-injection tests' verdict: each failure printed as it happens, then one line."""

    def __init__(self):
        self.messages = []

    def __bool__(self):
        return bool(self.messages)

    def __len__(self):
        return len(self.messages)

    def fail(self, msg):
        self.messages.append(msg)
        print("FAIL  " + msg)
        sys.stdout.flush()

    def finish(self, root, keep, daemons, seed):
        """Stops the daemons, shows their logs and keeps root on failure (or with --keep);
        returns the exit code."""
        for d in daemons:
            d.stop()
        if self.messages:
            for d in daemons:
                print(f"--- {os.path.basename(d.binary)} log (tail) ---\n" + d.log_text(6000))
        if keep or self.messages:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        print(f"{'FAILED' if self.messages else 'PASSED'}: {len(self.messages)} failures "
              f"(seed {seed})")
        return 1 if self.messages else 0


def arg_parser(doc):
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--indexer", required=True)
    ap.add_argument("--popd", required=True)
    ap.add_argument("--poplarctl", required=True)
    ap.add_argument("--poplar-mbox", required=True)
    ap.add_argument("--genmbox", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    return ap


# ---------------------------------------------------------------------------------------------
# Processes

_LIVE = []  # every process started, stopped at exit whatever happened


def _stop_all():
    for p in reversed(_LIVE):
        if p.poll() is None:
            p.kill()
            p.wait()


atexit.register(_stop_all)


def fault_env(fault):
    """This process's environment with POPLAR_FAULT set to fault (or removed)."""
    env = dict(os.environ)
    env.pop("POPLAR_FAULT", None)
    if fault:
        env["POPLAR_FAULT"] = fault
    return env


def _tail(path, n=4000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return ""


class Indexer:
    """poplar-indexer on its own temp spool, database and unix socket. spool_owner is the
    check_owner name (default: this test's user); extra_config is appended to the config."""

    def __init__(self, binary, poplarctl, root, spool_owner=None, extra_config=""):
        self.binary = binary
        self.poplarctl = poplarctl
        self.root = root
        self.spool = os.path.join(root, "spool")
        self.socket = os.path.join(root, "indexer.sock")
        self.config = os.path.join(root, "indexer.conf")
        self.log = os.path.join(root, "indexer.log")
        os.makedirs(self.spool, exist_ok=True)
        owner = spool_owner or pwd.getpwuid(os.geteuid()).pw_name
        with open(self.config, "w") as f:
            f.write(f'spools {{ directory: "{self.spool}" }}\n'
                    f'database_path: "{os.path.join(root, "index.sqlite")}"\n'
                    # mailboxes here are the test user's; the names are no system users
                    f'check_owner {{ spool_owner: "{owner}" }}\n'
                    f'listen {{ unix_socket: "{self.socket}" }}\n' + extra_config)
        self.proc = None

    def start(self, fault=None, timeout=20.0):
        """Starts the daemon (with POPLAR_FAULT=fault if given) and waits for its socket."""
        with open(self.log, "ab") as log:
            log.write(f"--- start {' '.join(self.command())} (fault {fault})\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         env=fault_env(fault))
        _LIVE.append(self.proc)
        self.wait_ready(timeout)

    def command(self):
        """The argv that starts the daemon (a subclass may wrap it)."""
        return [self.binary, "--config", self.config]

    def wait_ready(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"poplar-indexer exited with {self.proc.returncode}:\n"
                                   + self.log_text())
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(self.socket)
                return
            except OSError:
                time.sleep(0.02)  # polling the readiness condition itself
            finally:
                s.close()
        raise RuntimeError(f"poplar-indexer not accepting after {timeout}s:\n" + self.log_text())

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_text(self, n=4000):
        return _tail(self.log, n)

    def ctl(self, *argv, stdin="", timeout=60):
        return subprocess.run([self.poplarctl, "--socket", self.socket, *argv], input=stdin,
                              capture_output=True, text=True, timeout=timeout)

    def add_account(self, user, password):
        r = self.ctl("accounts", "add", user, "--password-stdin", stdin=password + "\n")
        if r.returncode != 0:
            raise RuntimeError(f"poplarctl accounts add {user}: {r.returncode} {r.stderr}")

    def mailbox(self, user):
        return os.path.join(self.spool, user)


class Popd:
    LISTENING = re.compile(rb"listening on pop3 (\S+):(\d+) ")

    def __init__(self, binary, root, indexer_socket, name="popd", threads=2,
                 preauth_timeout_s=5, extra="", indexer_extra=""):
        self.binary = binary
        self.config = os.path.join(root, f"{name}.conf")
        self.log = os.path.join(root, f"{name}.log")
        with open(self.config, "w") as f:
            f.write('listen { address: "127.0.0.1:0" }\n'
                    f'indexer {{ target: "unix:{indexer_socket}" {indexer_extra}}}\n'
                    'plaintext_auth_networks: "127.0.0.0/8"\n'
                    f'threads: {threads}\n'
                    f'limits {{ preauth_timeout_s: {preauth_timeout_s}'
                    # Failed logins are delayed and limited per address by default (2 s, 20);
                    # the functional tests make many on purpose from 127.0.0.1, so here they
                    # are short and high (and 200 concurrent sessions come from one address). popd_abuse_test
                    # checks the real defaults.
                    ' auth_failure_delay_ms: 50 max_auth_failures_per_ip: 10000'
                    ' max_auth_failures_per_user: 10000 max_connections_per_ip: 10000 }\n' + extra)
        self.proc = None
        self.port = None
        self.host = "127.0.0.1"

    def start(self, timeout=20.0):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([self.binary, "--config", self.config],
                                         stdout=subprocess.PIPE, stderr=log)
        _LIVE.append(self.proc)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    break
                out += chunk
                m = self.LISTENING.search(out)
                if m:
                    self.port = int(m.group(2))
                    return
            elif self.proc.poll() is not None:
                break
        self.proc.kill()
        raise RuntimeError(f"poplar-popd did not report listening: {out!r}\n" + self.log_text())

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_text(self, n=4000):
        return _tail(self.log, n)


POP3S = re.compile(rb"listening on pop3s (\S+):(\d+)")


def start_tls_popd(binary, root, indexer_socket, cert, key, name="popd-tls", extra="",
                   listen_extra=""):
    """popd with a plain port (STLS) and an implicit-TLS port, both port 0, 2 threads, plus the
    config lines `extra` and the listen fields `listen_extra`; returns (Popd, implicit TLS port)."""
    p = Popd(binary, root, indexer_socket, name=name)
    with open(p.config, "w") as f:
        f.write(f'listen {{ address: "127.0.0.1:0" implicit_tls_address: "127.0.0.1:0" {listen_extra}}}\n'
                f'indexer {{ target: "unix:{indexer_socket}" }}\n'
                f'tls {{ certificate_chain_file: "{cert}" private_key_file: "{key}" }}\n'
                'threads: 2\n' + extra)
    out_path = os.path.join(root, f"{name}.out")
    with open(out_path, "wb") as out, open(p.log, "ab") as log:
        p.proc = subprocess.Popen([binary, "--config", p.config], stdout=out, stderr=log)
    _LIVE.append(p.proc)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and p.proc.poll() is None:
        with open(out_path, "rb") as f:
            text = f.read()
        m1, m2 = Popd.LISTENING.search(text), POP3S.search(text)
        if m1 and m2:
            p.port = int(m1.group(2))
            return p, int(m2.group(2))
        time.sleep(0.05)
    raise RuntimeError("poplar-popd with TLS did not start:\n" + p.log_text())


class Env:
    """A temp root with a running indexer and popd; use as a context manager."""

    def __init__(self, args, prefix, **popd_kw):
        self.args = args
        self.root = tempfile.mkdtemp(prefix=prefix)
        self.indexer = Indexer(args.indexer, args.poplarctl, self.root)
        self.popd = Popd(args.popd, self.root, self.indexer.socket, **popd_kw)

    def __enter__(self):
        self.indexer.start()
        self.popd.start()
        return self

    def __exit__(self, *exc):
        self.popd.stop()
        self.indexer.stop()
        return False

    def cleanup(self, failed):
        if failed:
            print("--- poplar-popd log (tail) ---\n" + self.popd.log_text())
            print("--- poplar-indexer log (tail) ---\n" + self.indexer.log_text())
        if self.args.keep:
            print(f"kept {self.root}")
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def genmbox(self, user, messages, seed=1):
        path = self.indexer.mailbox(user)
        subprocess.run([sys.executable, self.args.genmbox, "--messages", str(messages),
                        "--user", user, "--seed", str(seed), path], check=True)
        return path


def run_main(doc, prefix, body, before_start=None, **popd_kw):
    """Parses the arguments, starts an Env, runs body(env, checks), prints the summary.
    before_start(env), if given, runs first (to add to the configs)."""
    args = arg_parser(doc).parse_args()
    c = Checks()
    env = Env(args, prefix, **popd_kw)
    started = time.monotonic()
    try:
        if before_start:
            before_start(env)
        with env:
            body(env, c)
    except Exception as e:  # a broken harness is a failure, not a crash without a summary
        import traceback
        traceback.print_exc()
        c.check("harness", False, f"{type(e).__name__}: {e}")
    finally:
        _stop_all()
        env.cleanup(c.failed > 0)
    print(f"took {time.monotonic() - started:.1f}s")
    return c.summary()


# ---------------------------------------------------------------------------------------------
# The mbox, independently of Poplar's scanner (design.md §3)

_FROM_LINE = re.compile(
    rb"From \S+ +(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    rb" +\d{1,2} \d{1,2}:\d{2}(:\d{2})?( [A-Z]{3,4}| [+-]\d{4})? \d{4}( [A-Z]{3,4}| [+-]\d{4})?"
    rb"\r?\n")


def split_mbox(data):
    """The messages of an mbox: for each separator, the bytes after its From_ line up to (not
    including) the blank line before the next separator; the last one up to EOF minus one
    trailing blank line. A separator is a From_ line at the start or after an empty line."""
    starts = []  # (line start, body start)
    pos = 0
    prev_blank = True
    while pos < len(data):
        nl = data.find(b"\n", pos)
        end = len(data) if nl < 0 else nl + 1
        line = data[pos:end]
        if prev_blank and line.startswith(b"From "):
            m = _FROM_LINE.match(line)
            if m and m.end() == len(line):
                starts.append((pos, end))
        prev_blank = line in (b"\n", b"\r\n")
        pos = end
    messages = []
    for i, (_, body) in enumerate(starts):
        if i + 1 < len(starts):
            stop = starts[i + 1][0]
            # the blank line before the next separator is not part of the message
            if data[stop - 2:stop] == b"\r\n" and data[stop - 3:stop - 2] == b"\n":
                stop -= 2
            elif data[stop - 1:stop] == b"\n":
                stop -= 1
            messages.append(data[body:stop])
        else:
            stop = len(data)
            if data.endswith(b"\r\n\r\n"):
                stop -= 2
            elif data.endswith(b"\n\n"):
                stop -= 1
            messages.append(data[body:stop])
    return messages


def wire(message):
    """The message as POP3 counts and sends it before dot-stuffing: every bare LF as CRLF,
    existing CRLF kept, a final CRLF added if missing."""
    out = re.sub(rb"(?<!\r)\n", b"\r\n", message)
    if not out.endswith(b"\r\n"):
        out += b"\r\n"
    return out


def stuffed(wire_bytes):
    """What goes on the wire for a multi-line body: lines starting with '.' get one more."""
    lines = wire_bytes.split(b"\r\n")
    return b"\r\n".join((b"." + l) if l.startswith(b".") else l for l in lines)


def top(wire_bytes, n):
    """TOP msg n of a message in wire form: the header, the blank line, n body lines."""
    head, sep, body = wire_bytes.partition(b"\r\n\r\n")
    if not sep:
        return wire_bytes
    lines = body.split(b"\r\n")[:-1]  # body ends with CRLF
    return head + b"\r\n\r\n" + b"".join(l + b"\r\n" for l in lines[:n])


def expected_messages(path):
    with open(path, "rb") as f:
        return [wire(m) for m in split_mbox(f.read())]


def mda_append(spool, user, data):
    """Delivers like a Debian MDA: dotlock (dotlockfile, NFS-safe link method) first, then an
    fcntl write lock on the mbox, append, fsync, unlock both."""
    path = os.path.join(spool, user)
    lock = path + ".lock"
    subprocess.run(["dotlockfile", "-l", "-r", "10", lock], check=True)
    try:
        with open(path, "ab") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            try:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN)
    finally:
        subprocess.run(["dotlockfile", "-u", lock], check=True)


def make_message(sender, subject, body_lines, when="Thu Nov 27 10:00:00 2026", eol=b"\n",
                 final_blank=True):
    lines = [f"From {sender}  {when}".encode(),
             f"From: <{sender}>".encode(), b"To: user@example.net",
             f"Subject: {subject}".encode(), f"Message-ID: <{subject.replace(' ', '.')}@t>".encode(),
             b""] + [l if isinstance(l, bytes) else l.encode() for l in body_lines]
    out = b"\n".join(lines[:1]) + b"\n" + eol.join(lines[1:]) + eol
    return out + (eol if final_blank else b"")


# ---------------------------------------------------------------------------------------------
# A raw POP3 client, for what poplib hides (the stuffed bytes, pipelining, hostile input)

class Raw:
    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def multi(self):
        """The body of a multi-line response after its first line, as sent (still stuffed),
        without the terminating '.' line."""
        while True:
            if self.buf.startswith(b".\r\n"):
                self.buf = self.buf[3:]
                return b""
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                body, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return body
            self._fill()

    def cmd(self, text):
        self.send(text.encode() + b"\r\n")
        return self.line()

    def closed_within(self, seconds):
        """True if the server closes the connection (EOF or reset) within the time; any bytes
        received meanwhile are kept in self.buf."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# Privileges, as /proc shows them

def unprivileged_ids():
    """(uid of nobody, gid of nogroup, gid of mail): what the privilege tests drop to."""
    import grp
    import pwd
    return (pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid,
            grp.getgrnam("mail").gr_gid)


def proc_status(pid):
    """Uid, Gid, Groups (lists) and the Cap* sets (ints) of a process; None if its threads
    disagree (capabilities are per thread: a drop that missed a thread shows here)."""
    def one(path):
        out = {}
        for line in open(path):
            key, _, value = line.partition(":")
            if key in ("Uid", "Gid", "Groups"):
                out[key] = [int(x) for x in value.split()]
            elif key.startswith("Cap"):
                out[key] = int(value.strip(), 16)
        return out
    per_thread = [one(f"/proc/{pid}/task/{t}/status") for t in os.listdir(f"/proc/{pid}/task")]
    return per_thread[0] if all(t == per_thread[0] for t in per_thread) else None


def check_run_as_refused(c, binary, config, bad, why, *flags):
    """Starts `binary` (with `flags`, e.g. --check-config) on `config` with its run_as { }
    replaced by `bad`; checks that it exits non-zero saying `why` on stderr."""
    cfg = config + ".bad"
    with open(config) as f:
        base = f.read().split("run_as")[0]
    with open(cfg, "w") as f:
        f.write(base + bad + "\n")
    r = subprocess.run([binary, "--config", cfg, *flags], capture_output=True, timeout=20)
    c.check(f"{bad}: refused ({why})", r.returncode != 0 and why in r.stderr.decode(),
            r.stderr.decode()[:300])


def login_reply(port, user, password):
    """The server's answer to PASS: the -ERR line of a refused login (bytes), or b"+OK"."""
    import poplib
    p = poplib.POP3("127.0.0.1", port, timeout=15)
    try:
        p.user(user)
        p.pass_(password)
        return b"+OK"
    except poplib.error_proto as e:
        return e.args[0]
    finally:
        p.close()


def login(port, user, password):
    import poplib
    p = poplib.POP3("127.0.0.1", port, timeout=15)
    p.user(user)
    p.pass_(password)
    return p
