#!/usr/bin/env bash
# Whether two warden binaries give the same `warden scan --explain` output (patterns, score,
# level, categories) line for line on: the development set, 3,000 paragraphs of /usr/share/doc
# (tools/doc-sample.py) and 3,000 texts of catalogue pieces in their corners
# (tools/scan-corpus.py). A change to how the scanner matches, not to what its catalogue says,
# must leave every line as it was.
#   cp target/release/warden /tmp/warden-before     # on the parent commit
#   cargo build --release && tools/scan-equivalence.sh /tmp/warden-before target/release/warden
set -euo pipefail
cd "$(dirname "$0")/.."
before="$1" after="$2"
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
cp ../shared/data/threats/dev.jsonl "$dir/dev.jsonl" 2>/dev/null || : > "$dir/dev.jsonl"
tools/doc-sample.py > "$dir/doc.jsonl"
tools/scan-corpus.py > "$dir/corpus.jsonl"
status=0
for set in dev doc corpus; do
    "$before" scan --explain "$dir/$set.jsonl" > "$dir/$set.before"
    "$after" scan --explain "$dir/$set.jsonl" > "$dir/$set.after"
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
