#!/usr/bin/env bash
# Whether two warden binaries give the same `warden scan --explain` output (patterns, score,
# level, categories) line for line on: the development set, 3,000 paragraphs of /usr/share/doc
# (tools/doc-sample.py) and 3,000 texts of catalogue pieces in their corners
# (tools/scan-corpus.py). A change to how the scanner matches, not to what its catalogue says,
# must leave every line as it was.
#   cp target/release/warden /tmp/warden-before     # on the parent commit
#   cargo build --release && tools/scan-equivalence.sh /tmp/warden-before target/release/warden
# With --verdicts, lines are compared by what they decide (the indices of the patterns that
# matched, score, level, categories), not byte for byte: for a catalogue edit that rewrites a
# pattern's text (a bound on a repetition) and must match the same texts.
set -euo pipefail
cd "$(dirname "$0")/.."
verdicts=0
if [ "${1:-}" = "--verdicts" ]; then
    verdicts=1
    shift
fi
before="$1" after="$2"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cp ../shared/data/threats/dev.jsonl "$dir/dev.jsonl" 2>/dev/null || : > "$dir/dev.jsonl"
tools/doc-sample.py > "$dir/doc.jsonl"
tools/scan-corpus.py > "$dir/corpus.jsonl"
# one line a verdict: sorted pattern indices, score, level, categories
decisions() {
    python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    print(sorted(p["index"] for p in r["patterns"]), r["score"], r["threat_level"], r["categories"])
'
}
status=0
for set in dev doc corpus; do
    "$before" scan --explain "$dir/$set.jsonl" > "$dir/$set.before"
    "$after" scan --explain "$dir/$set.jsonl" > "$dir/$set.after"
    if [ "$verdicts" = 1 ]; then
        decisions < "$dir/$set.before" > "$dir/$set.b" && mv "$dir/$set.b" "$dir/$set.before"
        decisions < "$dir/$set.after" > "$dir/$set.a" && mv "$dir/$set.a" "$dir/$set.after"
    fi
    lines=$(wc -l < "$dir/$set.before")
    if cmp -s "$dir/$set.before" "$dir/$set.after"; then
        echo "$set: $lines lines, identical"
    else
        echo "$set: $lines lines, $(diff "$dir/$set.before" "$dir/$set.after" | grep -c '^<') differ; first:"
        diff "$dir/$set.before" "$dir/$set.after" | head -4
        status=1
    fi
done
exit $status
