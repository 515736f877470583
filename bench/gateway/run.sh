#!/usr/bin/env bash
# POST /v1/tasks throughput through `conveyor gateway` with wrk (docs/BENCHMARKS.md, "HTTP
# gateway"): an in-memory broker with room for every task, a gateway with one token, and wrk with
# keep-alive on loopback. Tasks queue without a consumer, so what is measured is HTTP in, the
# broker's ACCEPTED, and the 202 out.
#   bash bench/gateway/run.sh [CONVEYOR_BINARY] [SECONDS] [CONNECTIONS] [WRK_THREADS]
set -euo pipefail
cd "$(dirname "$0")/../.."
conveyor=${1:-.build/release/conveyor}
seconds=${2:-10}
connections=${3:-64}
threads=${4:-1}
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

"$conveyor" broker --in-memory --frontend 'tcp://127.0.0.1:*' --backend 'tcp://127.0.0.1:*' \
    --max-queued 5000000 --max-queued-bytes 4294967296 --queue-share 100 --keep-results 10 > "$work/broker.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^frontend ' "$work/broker.out" && break; sleep 0.1; done
frontend=$(awk '/^frontend /{print $2}' "$work/broker.out")

export TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$TOKEN scopes=submit,read rate=1000000 burst=1000000 name=bench" > "$work/tokens"
"$conveyor" gateway --broker "$frontend" --listen 127.0.0.1:0 --token-file "$work/tokens" --log-level warning > "$work/gateway.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening ' "$work/gateway.out" && break; sleep 0.1; done
[ -n "$(grep "^listening " "$work/gateway.out")" ] || { cat "$work/broker.out" "$work/gateway.out" >&2; exit 1; }
url=$(awk '/^listening /{print $2}' "$work/gateway.out")

echo "wrk -t$threads -c$connections -d${seconds}s -s bench/gateway/submit.lua $url/v1/tasks"
wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s bench/gateway/submit.lua "$url/v1/tasks"
# The floor: the same server answering GET /healthz (no body, no token, no broker).
echo "wrk -t$threads -c$connections -d${seconds}s $url/healthz"
wrk -t"$threads" -c"$connections" -d"${seconds}s" "$url/healthz" | grep -E 'Requests/sec|Latency'
"$conveyor" stats --broker "$frontend" 2>/dev/null | grep -iE 'queued|accepted|submitted' | head -5 || true
