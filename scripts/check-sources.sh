#!/usr/bin/env bash
# Source rules that the compiler cannot check, run by scripts/test.sh before the build:
#  1. A task's state changes only inside the broker's state machine: `TaskRecord.move(to:)` is
#     called only from Sources/Broker/State/TaskTable*.swift, and `state` is assigned nowhere else
#     in the broker (TaskRecord's own `move` is the one write).
#  2. No Swift source file is longer than 400 lines, except those listed below with the reason.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0

movers=$(grep -rln --include='*.swift' '\.move(to:' Sources | grep -v '^Sources/Broker/State/TaskTable' || true)
if [ -n "$movers" ]; then
    echo "error: a task's state is changed outside the task state machine (TaskTable) in:" >&2
    echo "$movers" | sed 's/^/  /' >&2
    status=1
fi
writes=$(grep -rn --include='*.swift' -E '(^|[^.[:alnum:]_])(task|record|existing|current|self)?\.?state[[:space:]]*=[^=]' Sources/Broker \
    | grep -v '^Sources/Broker/State/TaskRecord.swift:.*func move' || true)
if [ -n "$writes" ]; then
    echo "error: a task's state is assigned outside TaskRecord.move(to:):" >&2
    echo "$writes" | sed 's/^/  /' >&2
    status=1
fi

# Longer files, each with its reason.
allowed_long=(
)
while IFS= read -r file; do
    lines=$(wc -l < "$file")
    [ "$lines" -le 400 ] && continue
    allowed=0
    for entry in "${allowed_long[@]+"${allowed_long[@]}"}"; do [ "$entry" = "$file" ] && allowed=1; done
    if [ "$allowed" -eq 0 ]; then
        echo "error: $file has $lines lines (at most 400; split it, or list it in scripts/check-sources.sh with the reason)" >&2
        status=1
    fi
done < <(find Sources examples -name '*.swift' | sort)

[ "$status" -eq 0 ] && echo "source checks passed"
exit "$status"
