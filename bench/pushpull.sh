#!/usr/bin/env bash
# PUSH/PULL throughput, plain libzmq (bench/c/pushpull.c) against the Swift wrapper
# (`conveyor bench pushpull`), run alternately RUNS (default 7) times each; prints every JSON line, the median
# msgs/s of each and their ratio.
#
# usage: bench/pushpull.sh [MESSAGES]        (default 1000000, 100-byte messages)
#   CONVEYOR_BIN=/path/to/conveyor  skips `swift build -c release --product conveyor`
set -euo pipefail

messages="${1:-1000000}"
size=100
runs="${RUNS:-7}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/bench/out"
mkdir -p "$out"

# shellcheck disable=SC2046  # pkg-config output is meant to split into words
gcc -O2 -Wall -o "$out/pushpull-c" "$root/bench/c/pushpull.c" \
    $(pkg-config --cflags --libs libzmq) -lpthread

if [[ -n "${CONVEYOR_BIN:-}" ]]; then
    bin="$CONVEYOR_BIN"
else
    (cd "$root" && swift build -c release --product conveyor >&2)
    bin="$(cd "$root" && swift build -c release --show-bin-path)/conveyor"
fi

c_lines=()
swift_lines=()
for ((run = 1; run <= runs; run++)); do
    line="$("$out/pushpull-c" "$messages" "$size")"
    echo "$line"
    c_lines+=("$line")
    line="$("$bin" bench pushpull --messages "$messages" --size "$size" --json)"
    echo "$line"
    swift_lines+=("$line")
done

python3 - "${#c_lines[@]}" "${c_lines[@]}" "${swift_lines[@]}" <<'PY'
import json, statistics, sys
count = int(sys.argv[1])
lines = sys.argv[2:]
c = statistics.median(json.loads(line)["msgs_per_sec"] for line in lines[:count])
swift = statistics.median(json.loads(line)["msgs_per_sec"] for line in lines[count:])
print(f"median c: {c:.0f} msgs/s")
print(f"median swift: {swift:.0f} msgs/s")
print(f"ratio swift/c: {swift / c:.2f}")
PY
