#!/usr/bin/env bash
# W1 (echo) throughput against consumer processes × threads, 1×1 up to 4×8, one run each, then a
# PNG plot (docs/scaling.png) drawn from the JSON lines (bench/out/scaling.jsonl).
#
# usage: bench/scaling.sh [SCALE]      (default 0.3: 30,000 tasks per shape)
#   CONVEYOR_BIN=/path/to/conveyor  skips `swift build -c release --product conveyor`
#   PREFETCH=auto                    consumer prefetch (default auto, the consumer's default)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
scale="${1:-0.3}"
prefetch="${PREFETCH:-auto}"
out="$root/bench/out"
mkdir -p "$out"
bin="${CONVEYOR_BIN:-}"
if [ -z "$bin" ]; then
    (cd "$root" && swift build -c release --product conveyor >&2)
    bin="$root/.build/release/conveyor"
fi
python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install --quiet matplotlib >&2

: > "$out/scaling.jsonl"
for processes in 1 2 4; do
    for threads in 1 2 4 8; do
        echo "W1 ${processes}x${threads}…" >&2
        "$bin" bench w1 --json --scale "$scale" --prefetch "$prefetch" --shape "${processes}x${threads}" \
            | tee -a "$out/scaling.jsonl"
    done
done
python3 "$root/bench/plot_scaling.py" "$out/scaling.jsonl" "$root/docs/scaling.png"
echo "wrote docs/scaling.png" >&2
