#!/usr/bin/env python3
"""Whether a character n-gram perplexity layer would find optimised adversarial suffixes that the
threat scan misses, at a false-positive rate a gateway can bear. A measurement, not a layer: it
prints per category how often a line's high-surprise tail stands out against the prose before it,
alone and together with the scan's own suffix statistics (`gibberish`). PERF.md has the result
(issue 25, twenty-first session): not shipped.

    tools/perplexity-probe.py LABELLED.jsonl [WARDEN_BINARY]

LABELLED.jsonl is what `tools/threat-eval.sh` feeds `warden scan --eval` (`text`, `label`,
`category`). The model: an order-5 character model with Witten-Bell interpolation, trained on
WordNet 3.0's glosses and examples (8.8 MB; Debian's `wordnet-base`, WordNet licence) and
fortune-mod's `fortunes`, `literature` and `riddles` (Debian's `fortunes-min`), both fetched with
`apt-get download` and unpacked into a temporary folder, so that /usr/share/doc, a held-out
source, is left as it was. Text is lower-cased, digits read as `0`, white space as one space.

The feature, per text: over each line of 80 bytes or more, windows of 40 bytes; a window counts
where 80 % or more of its bytes are ASCII letters or spaces (a URL, a number, a table row does
not); the feature is the largest mean surprise (bits per byte) of such a window less the lowest of
a counted window ending 40 bytes or more before it, where that lowest is under 3 bits (prose came
first on the line). Adversarial suffixes follow the request on its line; that is the contrast."""
import collections, glob, json, math, os, re, subprocess, sys, tempfile

ORDER = 5
WINDOW = 40
LETTERS = 0.8
PROSE_BITS = 3.0
THRESHOLDS = (3.0, 4.0, 5.0)


def corpus():
    tmp = tempfile.mkdtemp()
    subprocess.run(["apt-get", "download", "wordnet-base", "fortunes-min"], cwd=tmp, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for deb in glob.glob(os.path.join(tmp, "*.deb")):
        subprocess.run(["dpkg-deb", "-x", deb, os.path.join(tmp, "x")], check=True)
    texts = []
    for f in glob.glob(os.path.join(tmp, "x/usr/share/wordnet/data.*")):
        for line in open(f, encoding="latin-1"):
            if not line.startswith("  ") and "| " in line:
                texts.append(line.split("| ", 1)[1].strip())
    for name in ("fortunes", "literature", "riddles"):
        f = os.path.join(tmp, "x/usr/share/games/fortunes", name)
        texts += open(f, encoding="utf-8", errors="replace").read().split("\n%\n")
    subprocess.run(["rm", "-rf", tmp], check=True)
    return texts


def norm(t):
    return re.sub(r"\s+", " ", re.sub(r"[0-9]", "0", t.lower()))


class Model:
    def __init__(self, texts):
        self.grams = [collections.Counter() for _ in range(ORDER + 1)]
        for t in texts:
            t = " " + norm(t) + " "
            for i in range(len(t)):
                for k in range(1, min(ORDER, i + 1) + 1):
                    self.grams[k][t[i - k + 1:i + 1]] += 1
        self.total = [collections.Counter() for _ in range(ORDER + 1)]
        self.kinds = [collections.Counter() for _ in range(ORDER + 1)]
        for k in range(1, ORDER + 1):
            for g, c in self.grams[k].items():
                self.total[k][g[:-1]] += c
                self.kinds[k][g[:-1]] += 1

    def bits(self, line):
        t = " " + norm(line)
        out = []
        for i in range(1, len(t)):
            p = 1 / 256
            for k in range(1, ORDER + 1):
                if i < k - 1:
                    break
                ctx = t[i - k + 1:i]
                tot = self.total[k].get(ctx, 0)
                if tot:
                    lam = tot / (tot + self.kinds[k][ctx])
                    p = lam * self.grams[k].get(ctx + t[i], 0) / tot + (1 - lam) * p
            out.append(-math.log2(p))
        return out, t[1:]


def contrast(model, text):
    best = 0.0
    for line in text[:4096].split("\n"):
        if len(line) < 2 * WINDOW:
            continue
        b, n = model.bits(line)
        ok = [1 if (c.isascii() and c.isalpha()) or c == " " else 0 for c in n]
        s, o = sum(b[:WINDOW]), sum(ok[:WINDOW])
        windows = []
        for i in range(WINDOW, len(b) + 1):
            windows.append((s / WINDOW, o >= LETTERS * WINDOW))
            if i < len(b):
                s += b[i] - b[i - WINDOW]
                o += ok[i] - ok[i - WINDOW]
        low = math.inf
        for j, (v, counted) in enumerate(windows):
            if j >= WINDOW and windows[j - WINDOW][1]:
                low = min(low, windows[j - WINDOW][0])
            if counted and low < PROSE_BITS:
                best = max(best, v - low)
    return best


def main():
    rows = [json.loads(l) for l in open(sys.argv[1])]
    gib = [None] * len(rows)
    if len(sys.argv) > 2:
        out = subprocess.run([sys.argv[2], "scan", sys.argv[1]], check=True, capture_output=True,
                             text=True).stdout.splitlines()
        gib = ["gibberish" in json.loads(l)["categories"] for l in out]
    model = Model(corpus())
    by = collections.defaultdict(lambda: [0, [0] * len(THRESHOLDS), [0] * len(THRESHOLDS)])
    for r, g in zip(rows, gib):
        f = contrast(model, r["text"])
        c = by[(r["label"], r["category"])]
        c[0] += 1
        for i, th in enumerate(THRESHOLDS):
            c[1][i] += f >= th
            c[2][i] += f >= th and bool(g)
    pct = lambda a, n: " ".join(f"{100 * x / n:5.1f}%" for x in a)
    th = " ".join(f"{t:>5}" for t in THRESHOLDS)
    print(f"| label | category | rows | contrast ≥ {th} | with `gibberish` ≥ {th} |")
    print("| --- | --- | --- | --- | --- |")
    for (label, cat), (n, alone, joint) in sorted(by.items()):
        print(f"| {label} | {cat} | {n} | {pct(alone, n)} | {pct(joint, n) if gib[0] is not None else '-'} |")


if __name__ == "__main__":
    main()
