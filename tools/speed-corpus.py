#!/usr/bin/env python3
"""The threat scan's speed corpus, `benches/corpus/scan.jsonl`: pieces of the kinds of text a
gateway scans, `{"category": ..., "text": ...}` a line, 120 pieces of up to 2 KiB a category.
`benches/scan_corpus.rs` joins them into 4 KiB texts (400 distinct texts a category, each its own
seeded order of the category's pieces) and times the scanner on every one.

    tools/speed-corpus.py > benches/corpus/scan.jsonl

Categories, and where they come from (all free to redistribute):
  prompt    requests, mails, tables and code snippets an agent is asked about: the development
            set's benign instruction and document rows (stanford_alpaca seed tasks, BIPIA)
  roleplay  persona prompts of the development set (awesome-chatgpt-prompts, CC0)
  document  READMEs, NEWS and changelogs under /usr/share/doc
  licence   /usr/share/doc/*/copyright and /usr/share/common-licenses
  manual    manual pages under /usr/share/man/man1, rendered by man(1) as plain text
  code      Rust (crates in ~/.cargo/registry), Python's standard library, C headers
  table     /etc/services, /etc/protocols, /etc/mime.types, zone and country tables, Debian's
            release CSV, the installed packages (dpkg-query, tab-separated), and Markdown tables
            from the READMEs and changelogs of crates in ~/.cargo/registry
  ru, zh    programs' translated messages (Russian, simplified Chinese): text that is not ASCII
  multilingual  the same in German, French, Spanish, Japanese, Polish and Korean
  attack    attack rows of the development set joined: the scanner's worst case, not English

Fixed seed. The pieces depend on what this machine has installed; the committed file is the one
PERF.md's figures were measured on, so regenerate only to widen it, and say so there."""
import glob
import gettext
import gzip
import json
import os
import random
import re
import subprocess
import sys

PER_CATEGORY = 120
PIECE_MAX = 2048
here = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(25)


def cut(text, limit=PIECE_MAX):
    """Whole lines (or, for one long line, whole characters) up to `limit` bytes."""
    out, n = [], 0
    for line in text.splitlines(keepends=True):
        b = len(line.encode())
        if n + b > limit:
            if not out:
                s = line.encode()[:limit].decode("utf-8", "ignore")
                out.append(s)
            break
        out.append(line)
        n += b
    return "".join(out).strip("\n")


def sample(items, k):
    items = sorted(set(i for i in items if len(i.encode()) >= 200))
    rng.shuffle(items)
    return items[:k]


def read(path, limit=1 << 20):
    try:
        with open(path, "rb") as f:
            data = f.read(limit)
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        return data.decode("utf-8")
    except Exception:
        return None


def chunks(text):
    """The text in pieces of up to PIECE_MAX bytes, split at blank lines."""
    pieces, cur = [], ""
    for para in re.split(r"\n\s*\n", text):
        if len((cur + "\n\n" + para).encode()) > PIECE_MAX and cur:
            pieces.append(cur)
            cur = ""
        cur = (cur + "\n\n" + para) if cur else para
    if cur:
        pieces.append(cut(cur))
    return [cut(p) for p in pieces]


def from_files(paths, per_file=2):
    out = []
    for p in paths:
        t = read(p)
        if t:
            ps = chunks(t)
            rng.shuffle(ps)
            out += ps[:per_file]
    return out


def dev(categories, label="benign"):
    rows = []
    for line in open(os.path.join(here, "..", "..", "shared", "data", "threats", "dev.jsonl")):
        r = json.loads(line)
        if r["label"] == label and r["category"] in categories:
            rows.append(r["text"])
    return rows


def joined(rows):
    """Short rows joined into pieces of about PIECE_MAX bytes."""
    rows = list(rows)
    rng.shuffle(rows)
    out, cur = [], ""
    for r in rows:
        cur = (cur + "\n\n" + r) if cur else r
        if len(cur.encode()) >= PIECE_MAX // 2:
            out.append(cut(cur))
            cur = ""
    return out


def man_pages(k):
    pages = sorted(glob.glob("/usr/share/man/man1/*.1.gz"))
    rng.shuffle(pages)
    out = []
    env = dict(os.environ, MANWIDTH="80", MAN_KEEP_FORMATTING="0")
    for p in pages[: k * 2]:
        try:
            r = subprocess.run(["man", "-l", p], capture_output=True, env=env, timeout=20)
        except Exception:
            continue
        text = re.sub(r".\x08", "", r.stdout.decode("utf-8", "ignore"))
        ps = chunks(text)
        if len(ps) > 1:
            out.append(ps[1])
    return out


def messages(langs):
    msgs = []
    for lang in langs:
        for mo in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
            try:
                with open(mo, "rb") as f:
                    cat = gettext.GNUTranslations(f)._catalog
            except Exception:
                continue
            vs = [v.strip() for k, v in cat.items() if k and isinstance(v, str) and len(v) > 12]
            if vs:
                msgs.append("\n".join(sorted(vs)[:40]))
    return msgs


def emit(category, pieces):
    pieces = sample(pieces, PER_CATEGORY)
    if len(pieces) < PER_CATEGORY // 2:
        sys.exit(f"speed-corpus: only {len(pieces)} pieces for {category}; install more packages")
    for p in pieces:
        print(json.dumps({"category": category, "text": p}, ensure_ascii=False))


emit("prompt", joined(dev({"instruction", "document_email", "document_table", "document_code"})))
emit("roleplay", joined(dev({"persona_prompt"})))
docs = [p for p in glob.glob("/usr/share/doc/*/*")
        if re.search(r"/(README|NEWS|changelog|TODO|AUTHORS)[^/]*$", p, re.I)]
emit("document", from_files(sorted(docs)))
emit("licence", from_files(sorted(glob.glob("/usr/share/doc/*/copyright")
                                  + glob.glob("/usr/share/common-licenses/*")), 1))
emit("manual", man_pages(PER_CATEGORY))
code = (sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/*/src/*.rs")))
        + sorted(glob.glob("/usr/lib/python3.11/*.py"))
        + sorted(glob.glob("/usr/include/*.h")))
rng.shuffle(code)
emit("code", from_files(code[:400], 1))

def table_windows(texts, per_text):
    """Runs of consecutive lines (up to PIECE_MAX bytes) from random places in each table."""
    out = []
    for t in texts:
        lines = t.splitlines(keepends=True)
        for _ in range(per_text):
            i = rng.randrange(len(lines))
            out.append(cut("".join(lines[i:i + 60])))
    return out


def markdown_tables(paths):
    """Markdown tables (runs of lines starting with `|`) with the line before them."""
    out = []
    for p in paths:
        t = read(p) or ""
        for m in re.finditer(r"(?m)^.*\n(?:\|.*\n){3,}", t):
            out.append(cut(m.group(0)))
    return out


tables = [read(p) for p in ["/etc/services", "/etc/protocols", "/etc/mime.types",
                            "/usr/share/zoneinfo/zone1970.tab", "/usr/share/zoneinfo/iso3166.tab",
                            "/usr/share/i18n/SUPPORTED", "/usr/share/distro-info/debian.csv",
                            "/usr/share/distro-info/ubuntu.csv"]]
dpkg = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${Version}\t${Architecture}\t"
                       "${Installed-Size}\t${binary:Summary}\n"], capture_output=True).stdout
tables.append(dpkg.decode("utf-8", "ignore"))
md = sorted(glob.glob(os.path.expanduser("~/.cargo/registry/src/*/*/*.md")))
emit("table", table_windows([t for t in tables if t], 12) + markdown_tables(md))
emit("ru", joined(messages(["ru"])))
emit("zh", joined(messages(["zh_CN"])))
emit("multilingual", joined(messages(["de", "fr", "es", "ja", "pl", "ko"])))
emit("attack", joined(dev({"jailbreak", "prompt_extraction", "command_injection",
                           "path_traversal"}, "attack")))
