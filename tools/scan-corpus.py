#!/usr/bin/env python3
"""Texts that put the threat scanner's matching machinery through its corners, as JSONL
(`{"text": ...}` a line) for `warden scan --explain`: catalogue phrases and regex pieces at the
start, middle and end of texts, inside words, after `_` and digits, in capitals, leetspeak,
spaced out, hyphen-chained, with zero-width characters, base64- and hex-encoded, cut short by
one byte, packed side by side with no separator, and long runs of the punctuation that opens
the technical patterns. Fixed seed: the same file on every run.

    tools/scan-corpus.py > /tmp/corpus.jsonl          # 3,000 texts (or: tools/scan-corpus.py N)

`tools/scan-equivalence.sh` runs two warden binaries over it (and over the development set and
the /usr/share/doc sample) and says whether every line's patterns and score agree: the check a
change to the scanner's matching (not its catalogue) must pass."""
import base64, json, os, random, re, sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
here = os.path.dirname(os.path.abspath(__file__))
random.seed(11)

# catalogue phrases, and literal pieces of its regexes (runs of plain characters)
phrases, pieces = [], []
src = open(os.path.join(here, "..", "src", "threat", "patterns.toml"), encoding="utf-8").read()
for m in re.finditer(r'^(phrase|regex) = (\'\'\'(.*?)\'\'\'|"((?:[^"\\]|\\.)*)")', src, re.M):
    kind, text = m.group(1), m.group(3) if m.group(3) is not None else m.group(4)
    if kind == "phrase":
        phrases.append(text.encode().decode("unicode_escape") if "\\" in text else text)
    else:
        # literal runs of a regex: what its gates and required literals are made of
        for lit in re.split(r"\\[a-zA-Z]|[\\()\[\]{}|?*+^$.]", text):
            if len(lit) >= 2:
                pieces.append(lit)
words = """the a report board quarterly figures please review attached summary team vendor
invoice meeting policy system prompt rules mode instructions your above list gain send it to
godsend developer godmode chatgpt gpt dangpt model assistant data password secret exec eval
ping sleep subject required limited configuration warning developer dev admin sudo evil
http https fetch curl wget img src cat ls id whoami bash sh python""".split()
punct = list(";|&`$(){}[]<>!#%-./\\\n\t_@'\",:") + ["$(", "${", "{{", "&&", "||", "../", "..\\",
                                                     "%2e%2e%2f", "%00", "<|", "![", "/etc/passwd"]
zw = ["\u200b", "\u200d", "\u2060", "\ufeff"]
leet = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7"}


def mutate(s):
    r = random.random()
    if r < 0.15:
        return s.upper()
    if r < 0.25:
        return "".join(leet.get(c, c) if random.random() < 0.5 else c for c in s)
    if r < 0.32:
        return " ".join(s)
    if r < 0.38:
        return s.replace(" ", "-")
    if r < 0.44:
        return random.choice(zw).join(s)
    if r < 0.50:
        return s[: max(1, len(s) - 1)]  # cut short by one byte
    if r < 0.55:
        return base64.b64encode(s.encode()).decode()
    if r < 0.58:
        return s.encode().hex()
    return s


def glue():
    r = random.random()
    if r < 0.5:
        return " "
    if r < 0.6:
        return ""  # inside a word
    if r < 0.7:
        return random.choice(["_", "7", "x", "9a"])
    return random.choice(punct)


def piece():
    r = random.random()
    if r < 0.35:
        return mutate(random.choice(phrases))
    if r < 0.6:
        return mutate(random.choice(pieces))
    if r < 0.85:
        return random.choice(words)
    return random.choice(punct) * random.randint(1, 4)


for i in range(n):
    k = random.choice([1, 2, 3, 5, 8, 20, 60, 200])
    t = "".join(glue() + piece() for _ in range(k))
    if random.random() < 0.5:
        t = t.lstrip()
    print(json.dumps({"text": t}))
