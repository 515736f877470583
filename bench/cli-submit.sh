#!/usr/bin/env bash
# The producer CLI against `conveyor bench w1`, alternating, ROUNDS times: an in-memory broker,
# 1 consumer process × 4 threads, `conveyor submit echo --input` of 100,000 lines with every
# result line written (to a file), beside `conveyor bench w1` (the same shape). Prints each
# round's tasks/s; docs/BENCHMARKS.md has the figures. Usage: bench/cli-submit.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product conveyor >/dev/null
B=.build/release/conveyor
ROUNDS=${1:-5}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
python3 -c "
for i in range(100000): print('{\"n\":%d}' % i)" > "$WORK/w1.ndjson"
for round in $(seq "$ROUNDS"); do
    "$B" broker --in-memory --frontend tcp://127.0.0.1:7655 --backend tcp://127.0.0.1:7656 > /dev/null 2>&1 & BP=$!
    sleep 0.3
    "$B" consumer -b tcp://127.0.0.1:7656 -t 4 > /dev/null 2>&1 & CP=$!
    sleep 0.8
    "$B" submit echo -i "$WORK/w1.ndjson" -b tcp://127.0.0.1:7655 > "$WORK/out.ndjson" 2> "$WORK/err.txt"
    kill -INT "$CP"; kill -TERM "$BP"; wait "$CP" "$BP" 2>/dev/null || true
    echo "cli submit: $(tail -1 "$WORK/err.txt"); $(wc -l < "$WORK/out.ndjson") result lines"
    "$B" bench w1 2>&1 | grep -o "= [0-9]* tasks/s" | sed 's/^= /bench w1: /'
done
