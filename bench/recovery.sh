#!/usr/bin/env bash
# Recovery of a durable broker holding N queued tasks (default 1,000,000), with the release build:
#   1. starts `conveyor broker --data-dir DIR` (a temporary DIR, fsync always) on free ports,
#   2. queues N echo tasks with `conveyor submit echo --input FILE --no-wait` (no consumer),
#   3. records the journal's bytes on disk (data, not preallocation) per queued task and the
#      broker's resident memory per queued task,
#   4. kill -9s the broker, starts it again on the same DIR, and measures the time from exec to
#      "frontend ..." (bound, recovered), with the broker's own "journal recovered ... ms=" figure,
#   5. checks `conveyor stats` says N queued, then stops it and removes DIR.
# Prints one JSON line. usage: bench/recovery.sh [N]   (CONVEYOR_BIN overrides the binary)
set -euo pipefail
count="${1:-1000000}"
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${CONVEYOR_BIN:-$root/.build/release/conveyor}"
[ -x "$bin" ] || (cd "$root" && swift build -c release --product conveyor >&2)
work="$(mktemp -d)"
trap 'pkill -9 -f "$work/data" 2>/dev/null || true; rm -rf "$work"' EXIT
python3 -c "
import sys
with open('$work/tasks.ndjson', 'w') as f:
    for i in range($count): f.write('{\"n\":%d,\"payload\":\"abcdefghabcdefghabcdefghabcdefghabcdefghabcdefghabcdefghabcdefgh\"}\n' % i)
"
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
front="tcp://127.0.0.1:$(port)"; back="tcp://127.0.0.1:$(port)"
start_broker() {
    "$bin" broker --frontend "$front" --backend "$back" --data-dir "$work/data" --max-queued $((count + 1000)) \
        > "$work/broker$1.log" 2>&1 &
    echo $!
}
pid=$(start_broker 1)
until grep -q "^frontend" "$work/broker1.log"; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/broker1.log" >&2; exit 1; }
    sleep 0.05
done
submit_start=$(date +%s.%N)
"$bin" submit echo --input "$work/tasks.ndjson" --no-wait --broker "$front" --window 5000 > "$work/accepted.ndjson" 2> "$work/submit.log"
submit_end=$(date +%s.%N)
accepted=$(grep -c '"id"' "$work/accepted.ndjson" || true)
rss=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$pid/status")
data_bytes=$(python3 - "$work/data" <<'PY'
import os, sys, glob
total = 0
for path in glob.glob(os.path.join(sys.argv[1], "*.journal")):
    data = open(path, "rb").read()
    end = len(data.rstrip(b"\0"))
    total += end
print(total)
PY
)
kill -9 "$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.01; done
restart_start=$(date +%s.%N)
pid=$(start_broker 2)
until grep -q "^frontend" "$work/broker2.log"; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/broker2.log" >&2; exit 1; }
    sleep 0.01
done
restart_end=$(date +%s.%N)
recovered_ms=$(grep -o 'ms=[0-9]*' "$work/broker2.log" | head -1 | cut -d= -f2)
queued=$("$bin" stats --json --broker "$front" | python3 -c 'import json,sys; print(json.load(sys.stdin)["queued_total"])')
rss_after=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$pid/status")
kill "$pid"; wait "$pid" 2>/dev/null || true
python3 - <<PY
import json
count, accepted = $count, $accepted
print(json.dumps({
    "workload": "recovery", "tasks": count, "accepted": accepted, "queuedAfterRestart": $queued,
    "verified": accepted == count and $queued == count,
    "submitSeconds": round($submit_end - $submit_start, 3),
    "journalDataBytesPerQueuedTask": round($data_bytes / max(1, accepted), 1),
    "brokerRSSBytesPerQueuedTaskBeforeKill": round($rss / max(1, accepted), 1),
    "brokerRSSBytesPerQueuedTaskAfterRecovery": round($rss_after / max(1, accepted), 1),
    "restartToBoundSeconds": round($restart_end - $restart_start, 3),
    "journalRecoveredMilliseconds": int("$recovered_ms" or 0),
}))
PY
