#!/usr/bin/env python3
"""Two more red-teaming tools' published data, as labelled JSONL for `warden scan --eval`:
sources no rule was written from when they were added (thirty-seventh session), so they
measure what the catalogue does on attacks and benign text it has not seen.

  spikee 0.9.2 (WithSecure, Apache-2.0)     data/workspace/datasets/seeds-*/
    jailbreaks.jsonl x instructions.jsonl   spikee_jailbreak   (73 templates, each filled
                                                               with 3 of its seed's orders;
                                            spikee_jailbreak_heldout: ten of its 20
                                                               families, held out)
    standalone_user_inputs.jsonl            spikee_standalone  (whole attack prompts)
    seeds-investment-advice*/standalone_... spikee_benign      (ordinary finance questions: an
                                                               off-topic request for a guarded
                                                               bot, no attack on the reader;
                                                               and the tool's false-positive set)
  agentdojo 0.1.35 (ETH Zurich, MIT)        attacks/*.py       agentdojo_injection
    the attacks' fixed templates filled     (each template with each suite's injection goals:
    with default_suites' injection goals    orders hidden in an agent's tool output)
    data/suites/*/environment.yaml and      agentdojo_benign   (the tool outputs the agent
    include/*.yaml, injection slots filled                     reads: emails, files, events,
    with their benign defaults                                 reviews, messages)

`tuned` marks whether rules were written from a category. Everything here is tuned on (read
while writing the thirty-seventh session's patterns) except half of spikee's jailbreak
families, chosen by name before any template was read (`HELD_OUT_FAMILIES`):
`spikee_jailbreak_heldout` measures whether patterns written from the other families carry
over. No code of these packages runs: the wheels are unzipped and read (Python sources
through `ast`).

  tools/package-sources.py > /tmp/packages.jsonl
  ./target/release/warden scan --eval /tmp/packages.jsonl

Wheels are cached in $HELDOUT_CACHE (default ~/.cache/warden-heldout). Needs pip and PyYAML
(installed from Debian's packages when missing).
"""
import ast
import glob
import json
import os
import random
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wheels import fetch, need_yaml  # noqa: E402

WHEELS = ["spikee==0.9.2", "agentdojo==0.1.35"]
TUNED = {"spikee_jailbreak", "spikee_standalone", "spikee_benign", "agentdojo_injection",
         "agentdojo_benign"}
# spikee's jailbreak families (`jailbreak_type`) held out: every other one in name order,
# chosen before any template was read (`policy-puppet` counted as `policy-puppetry`)
HELD_OUT_FAMILIES = {"challenge", "debug", "emergency", "experimental", "ignore",
                     "new-instructions", "no-limits", "poetry", "sorry", "test"}


def jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def spikee(tree, add):
    base = os.path.join(tree, "spikee", "data", "workspace", "datasets")
    rng = random.Random(37)
    templates = {}
    for seeds in sorted(glob.glob(os.path.join(base, "seeds-*"))):
        orders = [r["instruction"] for r in
                  (jsonl(os.path.join(seeds, "instructions.jsonl"))
                   if os.path.exists(os.path.join(seeds, "instructions.jsonl")) else [])
                  if r.get("instruction")]
        path = os.path.join(seeds, "jailbreaks.jsonl")
        for r in jsonl(path) if os.path.exists(path) else []:
            # a template is filled with orders from its own seed set, once (the first set
            # that holds it); "no-jailbreak" is the order alone, not an attack's text
            if r["jailbreak_type"] == "no-jailbreak" or r["text"] in templates or not orders:
                continue
            templates[r["text"]] = (orders, r["jailbreak_type"])
        path = os.path.join(seeds, "standalone_user_inputs.jsonl")
        for r in jsonl(path) if os.path.exists(path) else []:
            # the finance questions (a bot told to give no investment advice is their target,
            # and the `-fp` set is their false-positive twin) hold no attack on the reader
            if "investment-advice" in seeds:
                add(r["text"], "benign", "spikee_benign", "spikee " + os.path.basename(seeds))
            else:
                add(r["text"], "attack", "spikee_standalone",
                    "spikee " + os.path.basename(seeds))
    for text, (orders, family) in templates.items():
        family = "policy-puppetry" if family == "policy-puppet" else family
        category = "spikee_jailbreak_heldout" if family in HELD_OUT_FAMILIES \
            else "spikee_jailbreak"
        for order in rng.sample(orders, min(3, len(orders))):
            add(text.replace("<INSTRUCTION>", order), "attack", category,
                "spikee jailbreaks x instructions, " + family)


def module_strings(path):
    """Every string constant of a Python module, f-strings' literal parts joined with `{}`."""
    tree = ast.parse(open(path).read())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
        elif isinstance(node, ast.JoinedStr):
            out.append("".join(v.value if isinstance(v, ast.Constant) else "{}"
                               for v in node.values))
    return out


def class_constants(path):
    """Each class's string constants (`GOAL = ...`, `_JB_STRING = (...)`), f-strings filled from
    the module's own string constants (`_ATTACKER_IBAN = "..."`)."""
    tree = ast.parse(open(path).read())
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                isinstance(node.targets[0], ast.Name) and \
                isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            names[node.targets[0].id] = node.value.value

    def text(v):
        if isinstance(v, ast.Constant) and isinstance(v.value, str):
            return v.value
        if isinstance(v, ast.JoinedStr):
            parts = []
            for p in v.values:
                if isinstance(p, ast.Constant):
                    parts.append(p.value)
                elif isinstance(p, ast.FormattedValue) and isinstance(p.value, ast.Name):
                    parts.append(names.get(p.value.id, "{" + p.value.id + "}"))
                elif isinstance(p, ast.FormattedValue) and isinstance(p.value, ast.Attribute):
                    parts.append(names.get(p.value.attr, "{" + p.value.attr + "}"))
                else:
                    parts.append("{}")
            return "".join(parts)
        return None

    out = []
    for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
        consts = {}
        for node in cls.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name):
                t = text(node.value)
                if t is not None:
                    consts[node.targets[0].id] = t
        out.append((cls.name, consts))
    return out


def agentdojo(tree, add, yaml):
    root = os.path.join(tree, "agentdojo")
    goals = []
    for f in sorted(glob.glob(os.path.join(root, "default_suites", "v1", "*",
                                           "injection_tasks.py"))):
        for _, consts in class_constants(f):
            if "GOAL" in consts:
                goals.append(consts["GOAL"])
    # the attacks with a fixed text: a `{goal}` slot in a string constant of the attack modules
    templates = []
    for f in sorted(glob.glob(os.path.join(root, "attacks", "*.py"))):
        for s in module_strings(f):
            # (an attack's docstring quotes its template: "Attack which uses ...")
            if "{goal}" in s and s not in templates and not s.startswith("Attack "):
                templates.append(s)
    fill = {"user": "Emma Johnson", "model": "GPT-4", "tools": ""}
    # the denial-of-service attacks' texts have no goal: one row each
    for _, consts in class_constants(os.path.join(root, "attacks", "dos_attacks.py")):
        if "_DOS_STRING" in consts:
            text = consts["_DOS_STRING"]
            for k, v in fill.items():
                text = text.replace("{" + k + "}", v)
            add(text.strip(), "attack", "agentdojo_injection", "agentdojo dos_attacks.py")
    for t in templates:
        for goal in goals:
            text = t
            for k, v in fill.items():
                text = text.replace("{" + k + "}", v)
            add(text.replace("{goal}", goal).strip(), "attack", "agentdojo_injection",
                "agentdojo attacks x injection goals")
    # benign: the environments' texts, each injection slot given its default
    defaults = {}
    for f in glob.glob(os.path.join(root, "data", "suites", "*", "injection_vectors.yaml")):
        for k, v in (yaml.safe_load(open(f)) or {}).items():
            defaults[k] = v.get("default", "") if isinstance(v, dict) else ""
    seen = set()
    envs = glob.glob(os.path.join(root, "data", "suites", "*", "environment.yaml")) + \
        glob.glob(os.path.join(root, "data", "suites", "*", "include", "*.yaml"))
    for f in sorted(envs):
        raw = open(f).read()
        raw = re.sub(r"\{(\w+)\}", lambda m: str(defaults.get(m.group(1), m.group(0))), raw)
        raw = re.sub(r"!include\s+\S+", "null", raw)
        try:
            doc = yaml.safe_load(raw)
        except yaml.YAMLError:
            continue

        def walk(v):
            if isinstance(v, dict):
                for x in v.values():
                    walk(x)
            elif isinstance(v, list):
                for x in v:
                    walk(x)
            elif isinstance(v, str) and len(v) >= 80 and v not in seen:
                seen.add(v)
                add(v, "benign", "agentdojo_benign", "agentdojo " + os.path.relpath(f, root))
        walk(doc)


def main():
    yaml = need_yaml()
    trees = fetch(WHEELS)
    rows = []
    seen = set()

    def add(text, label, category, source):
        if text.strip() and text not in seen:
            seen.add(text)
            rows.append({"text": text, "label": label, "category": category, "source": source,
                         "tuned": category in TUNED})

    spikee(trees["spikee"], add)
    agentdojo(trees["agentdojo"], add, yaml)
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))


if __name__ == "__main__":
    main()
