#!/usr/bin/env python3
"""Benign text in other languages, as labelled JSONL for `warden scan --eval`: the translated
messages of this machine's programs (`/usr/share/locale/<lang>/LC_MESSAGES/*.mo`, read with
Python's gettext), joined a file at a time into texts of 200 to 4,000 bytes. Messages are what
programs say to people: errors, help text, prompts ("Ignore this file?", "Reveal password"), the
words an injection is made of, in ordinary use.

    tools/locale-sample.py > /tmp/locale.jsonl      # or: tools/locale-sample.py de ja

Category `multilingual_<lang>`, label benign. `tuned` is true for the six languages the
catalogue has injections in (fr de es ru ja zh_CN: their false positives were read while writing
those), false for the rest, whose rows were not looked at. Fixed seed; the rows depend on what
this machine has installed, so compare binaries on one machine."""
import gettext
import glob
import json
import os
import random
import sys

TUNED = ["fr", "de", "es", "ru", "ja", "zh_CN"]
HELD_OUT = ["it", "pt_BR", "uk", "pl", "ko", "nl"]
PER_LANG = 150


def texts(lang, rng):
    out = []
    for mo in sorted(glob.glob(f"/usr/share/locale/{lang}/LC_MESSAGES/*.mo")):
        try:
            with open(mo, "rb") as f:
                catalog = gettext.GNUTranslations(f)._catalog
        except Exception:
            continue
        msgs = []
        for k, v in catalog.items():
            if not k or not isinstance(v, str):
                continue
            v = v.strip()
            if len(v) >= 12 and "\x00" not in v:
                msgs.append(v)
        rng.shuffle(msgs)
        cur = ""
        for m in msgs:
            cur = (cur + "\n" + m) if cur else m
            if len(cur.encode()) >= rng.choice([200, 600, 1500, 4000]):
                out.append(cur[:4000])
                cur = ""
    rng.shuffle(out)
    return out[:PER_LANG]


def main():
    langs = sys.argv[1:] or TUNED + HELD_OUT
    rng = random.Random(25)
    n = 0
    for lang in langs:
        for t in texts(lang, rng):
            print(json.dumps({"text": t, "label": "benign", "category": "multilingual_" + lang,
                              "source": "/usr/share/locale " + lang, "tuned": lang in TUNED}))
            n += 1
    print(f"{n} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
