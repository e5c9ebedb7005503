#!/usr/bin/env python3
"""Oracle test: poplar-mbox against Python's mailbox.mbox on generated mboxrd files.

usage: mbox_oracle_test.py PATH/TO/poplar-mbox [--seed N] [--files N] [--keep DIR]

Every generated mailbox is well formed mboxrd: valid From_ lines only, a blank line before
each separator, and every body line matching ^>*From  quoted with one more '>'. On such files
Poplar's strict rules (design §3) and Python's lax "any line starting with 'From '" rule must
agree, so for each file this checks:
  * the message boundaries (From_ line offset, data offset, end offset) equal mailbox.mbox's
    table of contents, and the bytes between them equal mailbox.mbox's get_bytes();
  * octets == the message with every bare LF counted as CRLF, plus CRLF if it lacks a final
    newline (RFC 1939 §11);
  * UIDLs are 1-70 characters in 0x21-0x7E and unique in the mailbox;
  * poplar-mbox --check (the POP3 wire round trip) succeeded.
The generator is self-contained on purpose (shared bench tools may be missing). Exits non-zero
on any mismatch and ends with "N passed, M failed".
"""

import argparse
import json
import mailbox
import os
import random
import re
import subprocess
import sys
import tempfile

VALID_FROM_LINES = [
    "From alice@example.org Thu Nov 29 22:33:52 2001",
    "From bob@example.net  Fri Nov  9 08:05:01 2001",  # Postfix
    "From MAILER-DAEMON Sat Jan  1 00:00:00 2000",
    "From carol@example.com Sun, 2 Dec 2001 11:00:00 +0100",  # RFC 822 style
    "From dave@example.com Mon Dec  3 09:00 CET 2001",
    "From erin@example.com Tue Dec  4 12:00:00 2001 -0500",
    "From \"frank q\"@example.com Wed Dec  5 01:02:03 2001",
    "From uucp Thu Dec  6 04:05:06 2001 remote from uunet",
]

BODY_WORDS = ["hello", "world", "mbox", "pop3", "From", "from", ">From", ".", "..", "caf\u00e9",
              "\t", "x" * 120, "=?utf-8?q?x?=", "From:", "\x00", "\x7f"]

FROM_LIKE = re.compile(rb"^>*From ")


def mboxrd_quote(line):
    return b">" + line if FROM_LIKE.match(line) else line


class Generator:
    def __init__(self, rng):
        self.rng = rng

    def body_line(self):
        r = self.rng.random()
        if r < 0.10:
            text = ""
        elif r < 0.15:
            text = "."
        elif r < 0.18:
            text = ".."
        elif r < 0.28:
            text = self.rng.choice(VALID_FROM_LINES)  # gets quoted
        elif r < 0.33:
            text = ">" * self.rng.randint(1, 3) + "From " + self.rng.choice(["me", "here on"])
        elif r < 0.36:
            text = "From the start of a line"  # gets quoted
        else:
            text = " ".join(self.rng.choice(BODY_WORDS) for _ in range(self.rng.randint(1, 8)))
        ending = b"\r\n" if self.rng.random() < 0.15 else b"\n"
        return mboxrd_quote(text.encode("utf-8")) + ending

    def message(self, last):
        """From_ line, message bytes, and whether the message is complete with a newline."""
        from_line = self.rng.choice(VALID_FROM_LINES).encode() + b"\n"
        headers = []
        if self.rng.random() < 0.9:
            headers.append(b"From: someone@example.org\n")
            headers.append(("Subject: test %d\n" % self.rng.randint(0, 5)).encode())
        if self.rng.random() < 0.2:
            headers.append(("X-UIDL: qpop%d\n" % self.rng.randint(0, 4)).encode())
        if self.rng.random() < 0.2:
            headers.append(b"Received: from relay\n\tby mx; Thu, 29 Nov 2001 22:33:52 +0100\n")
        body = b"".join(self.body_line() for _ in range(self.rng.randint(0, 12)))
        content_length = None
        if self.rng.random() < 0.25:
            # Right, or wrong so that it cannot land on a separator or on EOF (never +1 past
            # the body's end, which is where the next From_ line is).
            delta = self.rng.choice([0, 0, 0, -2, 2, 5, 100000])
            content_length = max(0, len(body) + delta)
            headers.insert(0, ("Content-Length: %d\n" % content_length).encode())
        message = b"".join(headers) + (b"\n" if headers or self.rng.random() < 0.5 else b"") + body
        if last and content_length is None and message.endswith(b"\n") and self.rng.random() < 0.2:
            message = message[:-1]  # no final newline at the end of the file
            if message.endswith(b"\r"):
                message = message[:-1]
        return from_line, message, content_length == len(body)

    def mbox(self):
        n = self.rng.choice([0, 1, 1, 2, 3, 5, 8, 13, 30])
        out = b""
        for i in range(n):
            last = i == n - 1
            from_line, message, right_cl = self.message(last)
            out += from_line + message
            # A right Content-Length is followed by the separator's blank line even at the end
            # of the file, as Dovecot writes it: otherwise it measures the body up to EOF, and
            # Poplar (trusting it) keeps a final empty line that Python's mailbox drops.
            # Python's mailbox treats only b"\n" as a blank line, Poplar also b"\r\n" (CRLF
            # files): a last message ending in a CRLF blank line gets a final b"\n" so that
            # both exclude the same trailing blank line.
            crlf_blank_at_end = out.endswith(b"\n\r\n")
            if (not last or right_cl or crlf_blank_at_end or
                    (message.endswith(b"\n") and self.rng.random() < 0.7)):
                out += b"\n"  # the blank line before the next separator (or at the end)
        return out


def pop3_octets(message):
    n = 0
    for i, c in enumerate(message):
        n += 2 if c == 0x0A and (i == 0 or message[i - 1] != 0x0D) else 1
    if not message.endswith(b"\n"):
        n += 2
    return n


def python_view(path):
    box = mailbox.mbox(path, create=False)
    try:
        keys = sorted(box.keys())
        toc = [box._toc[k] for k in keys]  # (From_ line offset, end offset) of each message
        messages = [box.get_bytes(k) for k in keys]  # bytes after the From_ line
    finally:
        box.close()
    return toc, messages


def check_file(tool, path, data):
    """Returns a list of problems (empty when all is well)."""
    problems = []
    proc = subprocess.run([tool, "--json", "--check", path], capture_output=True)
    if proc.returncode != 0:
        return ["poplar-mbox exited %d: %s" % (proc.returncode, proc.stderr.decode(errors="replace"))]
    report = json.loads(proc.stdout)
    if not report.get("checked"):
        problems.append("report not checked")
    got = report["messages"]
    toc, py_messages = python_view(path)
    if len(got) != len(toc):
        return problems + ["%d messages, Python's mailbox has %d" % (len(got), len(toc))]
    uidls = set()
    for i, (m, (start, stop), py_bytes) in enumerate(zip(got, toc, py_messages), 1):
        where = "message %d" % i
        if m["offset"] != start:
            problems.append("%s: offset %d, Python %d" % (where, m["offset"], start))
        if m["end_offset"] != stop:
            problems.append("%s: end_offset %d, Python %d" % (where, m["end_offset"], stop))
        from_end = data.index(b"\n", start) + 1 if b"\n" in data[start:] else len(data)
        if m["data_offset"] != from_end:
            problems.append("%s: data_offset %d, From_ line ends at %d" % (where, m["data_offset"], from_end))
        ours = data[m["data_offset"]:m["end_offset"]]
        if ours != py_bytes:
            problems.append("%s: bytes differ from Python's get_bytes()" % where)
        want_octets = pop3_octets(py_bytes)
        if m["octets"] != want_octets:
            problems.append("%s: octets %d, want %d" % (where, m["octets"], want_octets))
        u = m["uidl"]
        if not (1 <= len(u) <= 70 and all(0x21 <= ord(c) <= 0x7E for c in u)):
            problems.append("%s: invalid UIDL %r" % (where, u))
        if u in uidls:
            problems.append("%s: duplicate UIDL %r" % (where, u))
        uidls.add(u)
    return problems


def self_test():
    """The oracle's own helpers, on values worked out by hand."""
    assert pop3_octets(b"") == 2
    assert pop3_octets(b"a\n") == 3
    assert pop3_octets(b"a\r\n") == 3
    assert pop3_octets(b"a\r\nb\nc") == 9
    assert mboxrd_quote(b"From x") == b">From x"
    assert mboxrd_quote(b">>From x") == b">>>From x"
    assert mboxrd_quote(b"From:x") == b"From:x"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tool")
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--files", type=int, default=100)
    parser.add_argument("--keep", help="write the generated files here and keep them")
    args = parser.parse_args()
    self_test()

    rng = random.Random(args.seed)
    gen = Generator(rng)
    passed = failed = 0
    messages = 0
    with tempfile.TemporaryDirectory() as tmp:
        out_dir = args.keep or tmp
        os.makedirs(out_dir, exist_ok=True)
        for i in range(args.files):
            data = gen.mbox()
            path = os.path.join(out_dir, "oracle-%04d.mbox" % i)
            with open(path, "wb") as f:
                f.write(data)
            problems = check_file(args.tool, path, data)
            messages += data.count(b"\nFrom ") + data.startswith(b"From ")
            if problems:
                failed += 1
                print("FAIL %s (seed %d, file %d):" % (path, args.seed, i))
                for p in problems[:10]:
                    print("  " + p)
                if not args.keep:
                    print("  rerun with --keep DIR to look at the file")
            else:
                passed += 1
    if messages < args.files:
        print("generator produced only %d messages in %d files" % (messages, args.files))
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
