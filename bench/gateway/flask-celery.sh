#!/usr/bin/env bash
# The Flask + Celery peer of bench/gateway/run.sh: the same wrk run (submit.lua's POST, keep-alive
# on loopback, the same duration, connections and wrk threads) against a Flask endpoint under
# gunicorn whose view calls Celery's delay() on a Redis broker (bench/gateway/flask_celery_app.py,
# the echo task of bench/celery/tasks.py). Redis runs on loopback without persistence (--save ''
# --appendonly no), as the gateway's broker runs --in-memory; no Celery worker runs, as no consumer
# runs for the gateway: tasks queue in Redis, and what is measured is HTTP in, Redis's answer to
# the push, and the 202 out.
#   bash bench/gateway/flask-celery.sh [SECONDS] [CONNECTIONS] [WRK_THREADS] [GUNICORN_WORKERS] [GUNICORN_THREADS]
# Defaults: 10 s, 64 connections, 1 wrk thread (run.sh's), and gunicorn -w 2 (one worker process
# per core of this 2-core machine) -k gthread --threads 8: gunicorn's sync workers close the
# connection after every answer, so keep-alive needs gthread. CELERY_BENCH_IGNORE_RESULT=1: the view
# calls apply_async(ignore_result=True) rather than delay(), so Celery skips its per-task SUBSCRIBE
# to the result channel (no result kept: see flask_celery_app.py). Installs what is missing as
# bench/compare.sh --with-celery does (pip: flask celery redis gunicorn; apt-get: redis-server wrk).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-10}
connections=${2:-64}
threads=${3:-1}
workers=${4:-2}
gthreads=${5:-8}

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
pip_install() {
    python3 -m pip install --quiet "$@" 2>/dev/null || python3 -m pip install --quiet --break-system-packages "$@" >&2
}
if ! python3 -c 'import flask, celery, redis, gunicorn' 2>/dev/null; then
    echo "installing flask, celery, redis-py and gunicorn: python3 -m pip install flask celery redis gunicorn" >&2
    pip_install flask celery redis gunicorn
fi
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
command -v wrk >/dev/null || missing+=(wrk)
if ((${#missing[@]})); then
    echo "installing ${missing[*]}: apt-get install -y ${missing[*]}" >&2
    ${sudo[@]+"${sudo[@]}"} apt-get update -qq >&2
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi

work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

redis_port=$(free_port)
redis-server --bind 127.0.0.1 --port "$redis_port" --protected-mode yes --save '' --appendonly no \
    --dir "$work" --daemonize no --loglevel warning > "$work/redis.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
redis-cli -p "$redis_port" ping | grep -q PONG || { cat "$work/redis.out" >&2; exit 1; }

export TOKEN=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
export CELERY_BENCH_REDIS_PORT=$redis_port
http_port=$(free_port)
gunicorn -w "$workers" -k gthread --threads "$gthreads" --bind "127.0.0.1:$http_port" --chdir bench/gateway \
    --log-level warning flask_celery_app:app > "$work/gunicorn.out" 2>&1 &
pids+=($!)
url=http://127.0.0.1:$http_port
for _ in $(seq 100); do curl -sf "$url/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -sf "$url/healthz" >/dev/null || { cat "$work/gunicorn.out" >&2; exit 1; }
# One task first, to check the path end to end (and connect every worker's producer once or so).
curl -sf -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '{"name":"echo","args":{"n":1},"options":{"require_consumer":false}}' "$url/v1/tasks" >/dev/null \
    || { echo "error: the first submit failed" >&2; cat "$work/gunicorn.out" >&2; exit 1; }

echo "gunicorn -w $workers -k gthread --threads $gthreads; $([ "${CELERY_BENCH_IGNORE_RESULT:-0}" = 1 ] && echo "apply_async(ignore_result=True)" || echo "delay()"); Celery $(python3 -c 'import celery; print(celery.__version__)'), Flask $(python3 -c 'import importlib.metadata as m; print(m.version("flask"))'), $(redis-server --version | cut -d' ' -f1-3)"
echo "wrk -t$threads -c$connections -d${seconds}s -s bench/gateway/submit.lua $url/v1/tasks"
wrk -t"$threads" -c"$connections" -d"${seconds}s" --latency -s bench/gateway/submit.lua "$url/v1/tasks"
echo "tasks queued in Redis (LLEN celery): $(redis-cli -p "$redis_port" llen celery)"
# The floor: the same server answering GET /healthz (no body, no token, no Celery).
echo "wrk -t$threads -c$connections -d${seconds}s $url/healthz"
wrk -t"$threads" -c"$connections" -d"${seconds}s" "$url/healthz" | grep -E 'Requests/sec|Latency'
