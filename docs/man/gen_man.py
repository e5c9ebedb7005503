#!/usr/bin/env python3
"""Poplar's man pages from one source (issue 14):

  * poplar-indexer(8), poplar-popd(8), poplarctl(8): docs/man/NAME.SECTION.md, a small
    Markdown subset (## headings, paragraphs, indented code, "- " lists, `code`, **bold**);
  * poplar-indexer.conf(5), poplar-popd.conf(5): the Markdown page's prose, then one entry per
    field of the configuration schema (proto/poplar/config.proto, popd_config.proto) with its
    type, default and the schema's own comment, so the page cannot drift from the schema. A
    field without a comment in the schema takes its text from the page's "## FIELDS" list
    ("- `path.to.field`: text"); man_schema_test.py fails for a field documented nowhere.

usage: gen_man.py SOURCE_ROOT OUT_DIR
"""
import os
import re
import sys

PAGES = {
    "poplar-indexer.8": None,
    "poplar-popd.8": None,
    "poplarctl.8": None,
    "poplar-indexer.conf.5": ("config.proto", "IndexerConfig"),
    "poplar-popd.conf.5": ("popd_config.proto", "PopdConfig"),
}
DATE = "2026-12-08"
VERSION = "0.1.0"


# ------------------------------------------------------------------ the schema


class Field:
    def __init__(self, label, type_, name, default, comment):
        self.label, self.type, self.name, self.default, self.comment = (
            label, type_, name, default, comment)


def parse_proto(path):
    """{message name: [Field]}, {enum name: [value names]} from a proto2 file. Comments are
    the // lines right above a field plus its trailing // comment."""
    messages, enums = {}, {}
    stack = []  # ("message"|"enum", name)
    pending = []
    for raw in open(path, encoding="utf-8"):
        line = raw.strip()
        if line.startswith("//"):
            pending.append(line[2:].strip())
            continue
        m = re.match(r"(message|enum)\s+(\w+)\s*\{", line)
        if m:
            stack.append((m.group(1), m.group(2)))
            if m.group(1) == "message":
                messages.setdefault(m.group(2), [])
            else:
                enums.setdefault(m.group(2), [])
            pending = []
            continue
        if line.startswith("}"):
            if stack:
                stack.pop()
            pending = []
            continue
        f = re.match(r"(optional|repeated|required)\s+([\w.]+)\s+(\w+)\s*=\s*\d+\s*"
                     r"(\[default\s*=\s*(.*?)\])?\s*;\s*(//\s*(.*))?$", line)
        if f and stack and stack[-1][0] == "message":
            comment = " ".join(pending + ([f.group(7)] if f.group(7) else []))
            messages[stack[-1][1]].append(
                Field(f.group(1), f.group(2), f.group(3), f.group(5), comment.strip()))
            pending = []
            continue
        e = re.match(r"(\w+)\s*=\s*\d+\s*;", line)
        if e and stack and stack[-1][0] == "enum":
            enums[stack[-1][1]].append(e.group(1))
        pending = [] if line else pending
    return messages, enums


def schema_entries(proto_dir, proto_file, root_message):
    """[(dotted path, Field, is_block)] in schema order, depth first from root_message."""
    messages, enums = {}, {}
    for name in ("config.proto", "popd_config.proto"):
        m, e = parse_proto(os.path.join(proto_dir, name))
        messages.update(m)
        enums.update(e)
    out = []

    def walk(msg, prefix):
        for f in messages[msg]:
            path = prefix + f.name
            block = f.type in messages
            out.append((path, f, block, enums.get(f.type)))
            if block:
                walk(f.type, path + ".")

    walk(root_message, "")
    return out


# ------------------------------------------------------------------ Markdown subset -> roff


def esc(text):
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = re.sub(r"\*\*(.+?)\*\*", r"\\fB\1\\fR", text)
    text = re.sub(r"`(.+?)`", r"\\fB\1\\fR", text)
    return text


def line_start(text):
    # A roff line must not start with a control character.
    return "\\&" + text if text.startswith((".", "'")) else text


def md_to_roff(md):
    out = []
    para = []
    code = False

    def flush():
        if para:
            out.append(".PP")
            out.append(line_start(esc(" ".join(para))))
            para.clear()

    for raw in md.splitlines():
        if raw.startswith("    ") and (code or not para):
            if not code:
                flush()
                out.append(".PP\n.nf\n.RS 4")
                code = True
            out.append(line_start(raw[4:].replace("\\", "\\e")))
            continue
        if code:
            out.append(".RE\n.fi")
            code = False
        if raw.startswith("## "):
            flush()
            out.append(".SH " + esc(raw[3:].strip().upper()))
        elif raw.startswith("- "):
            flush()
            out.append(".IP \\(bu 2")
            out.append(line_start(esc(raw[2:].strip())))
        elif raw.strip() == "":
            flush()
        else:
            para.append(raw.strip())
    flush()
    if code:
        out.append(".RE\n.fi")
    return "\n".join(out)


def split_fields_section(md):
    """(prose without the FIELDS section, {path: text}) from a .conf page's Markdown."""
    parts = re.split(r"^## FIELDS\s*$", md, flags=re.M)
    if len(parts) == 1:
        return md, {}, ""
    rest = parts[1]
    nxt = re.search(r"^## ", rest, flags=re.M)
    fields_md, after = (rest[:nxt.start()], rest[nxt.start():]) if nxt else (rest, "")
    extra = {}
    for m in re.finditer(r"^- `([\w.]+)`:\s*(.+?)(?=^- `|\Z)", fields_md, flags=re.M | re.S):
        extra[m.group(1)] = " ".join(m.group(2).split())
    return parts[0], extra, after


def render(src_root, page):
    name, section = page.rsplit(".", 1)
    md = open(os.path.join(src_root, "docs", "man", page + ".md"), encoding="utf-8").read()
    title = name.upper().replace("-", "\\-")
    head = f'.TH {title} {section} "{DATE}" "Poplar {VERSION}" "Poplar"'
    if PAGES[page] is None:
        return head + "\n" + md_to_roff(md) + "\n"
    proto_file, root_message = PAGES[page]
    prose, extra, after = split_fields_section(md)
    # Left-adjusted: the entries' long unbreakable values cannot be justified.
    body = [head, ".ad l", md_to_roff(prose), ".SH SETTINGS"]
    body.append(".PP\nEvery setting of the schema (proto/poplar/" + proto_file.replace("-", "\\-") +
                "), in its order. A block is written \\fIname\\fR { ... }; a repeated field is "
                "written once per value.")
    for path, f, block, enum_values in schema_entries(
            os.path.join(src_root, "proto", "poplar"), proto_file, root_message):
        kind = "block" if block else f.type
        if f.label == "repeated":
            kind = "repeated " + kind
        tag = f"\\fB{esc(path)}\\fR ({esc(kind)}"
        if f.default is not None:
            # \: lets a long default (a cipher list) break after each colon
            tag += ", default " + esc(f.default).replace(":", ":\\:")
        tag += ")"
        text = f.comment or extra.get(path, "")
        if enum_values:
            text += " Values: " + ", ".join(enum_values) + "."
        body.append(".TP\n" + tag + "\n" + line_start(esc(text.strip())))
    body.append(md_to_roff(after))
    return "\n".join(body) + "\n"


def main():
    src_root, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    for page in PAGES:
        with open(os.path.join(out_dir, page), "w", encoding="utf-8") as f:
            f.write(render(src_root, page))


if __name__ == "__main__":
    main()
