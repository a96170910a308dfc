#!/usr/bin/env python3
"""Benign text the threat catalogue was never tuned on: paragraphs of this machine's
/usr/share/doc (changelogs, READMEs, licences, manuals) as labelled JSONL for `warden scan --eval`.

    tools/doc-sample.py > /tmp/docs.jsonl && warden scan --eval /tmp/docs.jsonl

Every file (gunzipped) is split on blank lines; paragraphs of 200-6,000 bytes are shuffled with a
fixed seed and the first N (default 3,000) are written. The figure depends on what the machine has
installed: compare catalogues on one machine, not machines with one catalogue."""
import gzip, json, os, random, sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
paras = []
for root, _, files in os.walk("/usr/share/doc"):
    for f in files:
        p = os.path.join(root, f)
        try:
            if os.path.islink(p):
                continue
            if f.endswith(".gz"):
                t = gzip.open(p, "rt", errors="replace").read()
            elif os.path.getsize(p) < 200_000:
                t = open(p, errors="replace").read()
            else:
                continue
        except (OSError, EOFError):
            continue
        paras += [q.strip() for q in t.split("\n\n") if 200 <= len(q.strip()) <= 6000]
random.seed(7)
random.shuffle(paras)
for q in paras[:n]:
    print(json.dumps({"text": q, "label": "benign", "category": "usr_share_doc",
                      "source": "/usr/share/doc", "tuned": False}))
