#!/usr/bin/env bash
# Webhook deliveries per second (docs/BENCHMARKS.md, "HTTP gateway"): an in-memory broker, one
# consumer process (4 threads) running `echo`, a gateway delivering webhooks, and a local receiver
# (bench/gateway/receiver.py, Python's threading HTTP server, signatures checked with
# standardwebhooks). N echo tasks with a callback_url are submitted with --no-wait; the figure is
# the receiver's count over the time from its first delivery to its last.
#   bash bench/gateway/deliveries.sh [CONVEYOR_BINARY] [TASKS] [CONCURRENCY]
set -euo pipefail
cd "$(dirname "$0")/../.."
conveyor=${1:-.build/release/conveyor}
tasks=${2:-5000}
concurrency=${3:-32}
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

echo "whsec_$(head -c 32 /dev/urandom | base64)" > "$work/secret"
python3 bench/gateway/receiver.py --expect "$tasks" --secret-file "$work/secret" > "$work/receiver.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/receiver.out" ] && break; sleep 0.1; done
port=$(head -1 "$work/receiver.out")

"$conveyor" broker --in-memory --frontend 'tcp://127.0.0.1:*' --backend 'tcp://127.0.0.1:*' --max-queued 5000000 > "$work/broker.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^backend ' "$work/broker.out" && break; sleep 0.1; done
frontend=$(awk '/^frontend /{print $2}' "$work/broker.out")
backend=$(awk '/^backend /{print $2}' "$work/broker.out")
"$conveyor" consumer --backend "$backend" --threads 4 --log-level warning > "$work/consumer.out" 2>&1 &
pids+=($!)
echo "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n') scopes=read name=bench" > "$work/tokens"
"$conveyor" gateway --broker "$frontend" --backend "$backend" --listen 127.0.0.1:0 --token-file "$work/tokens" \
    --webhook-secret-file "$work/secret" --callback-allow 127.0.0.1 --webhook-concurrency "$concurrency" --log-level warning > "$work/gateway.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q '^listening ' "$work/gateway.out" && break; sleep 0.1; done

seq "$tasks" | awk '{print "{\"n\":" $1 "}"}' > "$work/input.ndjson"
echo "conveyor submit echo --input ($tasks lines) --no-wait --callback-url http://127.0.0.1:$port/hook; gateway --webhook-concurrency $concurrency"
"$conveyor" submit echo --broker "$frontend" --input "$work/input.ndjson" --no-wait --callback-url "http://127.0.0.1:$port/hook" > /dev/null
for _ in $(seq 1200); do grep -q '^deliveries ' "$work/receiver.out" && break; sleep 0.1; done
grep '^deliveries ' "$work/receiver.out" || { echo "error: not every delivery came within 120 s" >&2; tail -3 "$work/gateway.out" >&2; exit 1; }
