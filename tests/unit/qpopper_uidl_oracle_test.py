#!/usr/bin/env python3
"""Qpopper UIDL oracle: poplar-mbox --uidl=qpopper against an independent implementation.

The reference below is written from the rules in README ("Qpopper's UIDLs") and
../shared/docs/qpopper.md §3, not from common/mbox/qpopper_uidl.cc: MD5 over the From_ line,
the optional session counter, the Received/Date/Message-Id/Subject header lines (and
Content-Length, and continuation lines with the counter), the From_ line again; base-80 or hex;
the X-UIDL window; 1023-byte reads. It generates random mailboxes full of the cases those rules
single out (every header kind, folded lines, X-UIDL lengths around both edges, several X-UIDLs,
duplicates, CRLF header lines, NUL bytes, overlong lines, `remote from` From_ lines) and checks
every UIDL poplar-mbox prints, for every variant.

usage: qpopper_uidl_oracle_test.py POPLAR_MBOX [--seed N] [--mailboxes N]
"""
import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile

READ = 1023  # Qpopper's fgets into a 1024-byte buffer


def pieces(text):
    """Qpopper's reads of `text`: each line with its newline, cut every READ bytes."""
    out = []
    pos = 0
    while pos < len(text):
        nl = text.find(b"\n", pos)
        end = len(text) if nl < 0 else nl + 1
        while pos < end:
            out.append((text[pos:min(end, pos + READ)], not out or out[-1][0].endswith(b"\n")))
            pos = min(end, pos + READ)
    return out


def base80(digest):
    out = []
    for g in range(4):
        v = 0
        for b in digest[4 * g:4 * g + 4]:
            v = v * 16 + b  # Qpopper shifts by four bits, not eight
        for _ in range(5):
            ch = 0x21 + v % 80
            v //= 80
            out.append("~" if ch == ord(".") else chr(ch))
    return "".join(out)


def qpopper_uidl(from_line, header, old_style, server_mode, content_length, nonce):
    """(generated, adopted X-UIDL or None) for one message."""
    nul = lambda b: b.replace(b"\0", b" ")
    from_piece = nul(from_line[:READ])
    md = hashlib.md5(from_piece)
    counter = nonce is not None and not old_style
    if counter:
        md.update((nonce & (2**64 - 1)).to_bytes(8, "little"))
    x_uidl = None
    for piece, first in pieces(header):
        if not first:
            if piece == b"\n":
                break  # an empty read: the header ends for Qpopper
            continue
        piece = nul(piece)
        low = piece.lower()
        if content_length and piece.startswith(b"Content-Length:"):
            md.update(piece)
            continue
        # The hash serves only when the X-UIDL is not used: every line counts, X-UIDL or not.
        if (low.startswith(b"received:") or low.startswith(b"date:")
                               or low.startswith(b"message-id:") or low.startswith(b"subject:")
                               or (counter and piece[:1] in (b" ", b"\t"))):
            md.update(piece)
            continue
        if x_uidl is None and low.startswith(b"x-uidl:"):
            rest = piece[7:].lstrip(b" \t")
            n = len(rest)
            if (12 <= n <= 33) if server_mode else (12 < n < 33):
                if rest.endswith(b"\n"):
                    rest = rest[:-1]
                if rest.endswith(b"\r"):
                    rest = rest[:-1]
                x_uidl = rest.decode("latin-1")
    if not old_style:
        md.update(from_piece)
    d = md.digest()
    return (d.hex() if old_style else base80(d)), x_uidl


def valid_uidl(u):
    return 1 <= len(u) <= 70 and all(0x21 <= ord(c) <= 0x7E for c in u)


def expected_uidls(messages, variant):
    used = set()
    suffix = {}
    out = []
    for i, (from_line, header) in enumerate(messages):
        nonce = None if variant.get("seed") is None else variant["seed"] + i + 1
        gen, x = qpopper_uidl(from_line, header, variant.get("old_style", False),
                              variant.get("server_mode", False),
                              variant.get("content_length", True), nonce)
        if x is not None and valid_uidl(x) and x not in used:
            used.add(x)
            out.append(x)
            continue
        cand, k = gen, suffix.get(gen, 2)
        while cand in used:
            cand = "%s-%d" % (gen, k)
            k += 1
        suffix[gen] = k
        used.add(cand)
        out.append(cand)
    return out


DATES = ["Thu Nov 29 22:33:52 2001", "Mon Jan  5 04:03:02 2004", "Sat Dec  7 10:00 1996",
         "Tue Dec  8 01:02:03 2026 -0700"]


def rand_text(rng, n):
    return "".join(rng.choice("abcdefghij KLMNOP0123.-_<>@") for _ in range(n)).strip() or "x"


def gen_x_uidl(rng):
    n = rng.choice([10, 11, 12, 13, 20, 30, 31, 32, 33, 34])
    return "".join(rng.choice("ABCDEFabcdef0123456789!#$%~") for _ in range(n))


def gen_header(rng, crlf):
    lines = []
    kinds = ["Received: from mx%d by mail" % rng.randrange(9), "Date: " + rng.choice(DATES),
             "Message-Id: <%s@x>" % rand_text(rng, 8), "Message-ID: <%s@y>" % rand_text(rng, 8),
             "message-id: <%s>" % rand_text(rng, 5), "Subject: " + rand_text(rng, 20),
             "SUBJECT: loud", "Status: RO", "X-Status: F", "From: a@b", "To: c@d",
             "Content-Length: %d" % rng.randrange(100), "content-length: 7",
             "Received : spaced", "Dates: not a date header", "X-UIDL: " + gen_x_uidl(rng),
             "x-uidl:" + gen_x_uidl(rng), "X-UIDL:\t" + gen_x_uidl(rng) + " ",
             "Subject: nul\0byte", "Received: " + "L" * rng.choice([1000, 1013, 1014, 1030, 2100])]
    for _ in range(rng.randrange(1, 9)):
        line = rng.choice(kinds)
        lines.append(line)
        if rng.random() < 0.2:
            lines.append(rng.choice([" folded", "\tfolded tab", "  Received: inside fold"]))
    eol = "\r\n" if crlf else "\n"
    return "".join(l + (eol if crlf and rng.random() < 0.7 else "\n") for l in lines)


def gen_mailbox(rng, count):
    messages, blob = [], []
    for i in range(count):
        if messages and rng.random() < 0.1:  # an exact duplicate
            from_line, header = messages[rng.randrange(len(messages))]
        else:
            sender = rng.choice(["alice@example.org", "bob", "MAILER-DAEMON", "c@d.e"])
            from_line = "From %s %s%s\n" % (sender, rng.choice(DATES),
                                             " remote from uucphost" if rng.random() < 0.2 else "")
            header = gen_header(rng, rng.random() < 0.2).encode("latin-1")
            from_line = from_line.encode()
        messages.append((from_line, header))
        body = "body %d\nline\n" % i
        blob.append(from_line + header + b"\n" + body.encode() + b"\n")
    return messages, b"".join(blob)


VARIANTS = [
    ("default", [], {}),
    ("old-style", ["--uidl=qpopper-old-style"], {"old_style": True}),
    ("server-mode", ["--qpopper-server-mode"], {"server_mode": True}),
    ("no-content-length", ["--qpopper-no-content-length"], {"content_length": False}),
    ("nonce", ["--qpopper-nonce=1007000000"], {"seed": 1007000000}),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("poplar_mbox")
    ap.add_argument("--seed", type=int, default=16)
    ap.add_argument("--mailboxes", type=int, default=40)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    checked = adopted = suffixed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(args.mailboxes):
            messages, blob = gen_mailbox(rng, rng.randrange(1, 30))
            path = os.path.join(tmp, "mbox%d" % n)
            with open(path, "wb") as f:
                f.write(blob)
            for name, flags, variant in VARIANTS:
                cmd = [args.poplar_mbox, "--json"]
                if not any(f.startswith("--uidl=") for f in flags):
                    cmd.append("--uidl=qpopper")
                out = subprocess.run(cmd + flags + [path], check=True, capture_output=True).stdout
                got = [m["uidl"] for m in json.loads(out)["messages"]]
                want = expected_uidls(messages, variant)
                if got != want:
                    for i, (g, w) in enumerate(zip(got, want)):
                        if g != w:
                            print("mailbox %d variant %s message %d: poplar %r, reference %r\n"
                                  "from %r\nheader %r" % (n, name, i + 1, g, w, messages[i][0],
                                                          messages[i][1]))
                            break
                    else:
                        print("mailbox %d variant %s: %d messages, reference %d" %
                              (n, name, len(got), len(want)))
                    return 1
                checked += len(got)
                adopted += sum(1 for u in want if len(u) not in (20, 32) and "-" not in u[-3:])
                suffixed += sum(1 for u in want if u[-2:-1] == "-")
    print("qpopper oracle: %d UIDLs agree (%d variants, about %d adopted X-UIDLs, %d suffixed)"
          % (checked, len(VARIANTS), adopted, suffixed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
