#!/usr/bin/env bash
# Conveyor beside its peers (the workloads of docs/BENCHMARKS.md), in one run on one machine:
#   - PUSH/PULL: plain libzmq (bench/c/pushpull.c) against the Swift wrapper (`conveyor bench pushpull`)
#   - the libzmq limit: round trips through a C ROUTER/ROUTER forwarder (bench/c/forwarder.c),
#     pipelined (window 1,000) for W1 and one in flight for W2; for W4 the same SHA-256 work in plain
#     C with OpenSSL and no queue (bench/c/sha256.c) on 1 and 2 pthreads (1×1 and 1×2)
#   - the seed design in Python (bench/python-seed/run.py) on W1 (prefetch 0 and 16), W2, W3, W4
#   - Conveyor (`conveyor bench … --json`) on W1 (prefetch 0 and auto, its default), W2, W3, W4, and alone (the
#     peers have no figures for them) on W5 (scale-out: tasks/s and tasks per consumer process) and
#     W6 (memory: broker bytes per queued task, idle consumer RSS; at --scale 1 it queues 1,000,000
#     tasks, about 90 s and 600 MB for the broker)
#   - with --with-celery, Celery 5 + Redis (bench/celery/run.py) on W1, W2, W3, W4
#   - with --with-durable-peers, W1 with the broker's state on disk: Conveyor with its journal
#     (`conveyor bench w1 --fsync always` and `--fsync interval:10`, a durable broker in a temporary
#     data dir), Celery + Redis with appendonly yes and appendfsync always (bench/celery/run.py
#     --durable) and RabbitMQ with durable queues, persistent messages and publisher confirms
#     (bench/rabbitmq/run.py)
# Conveyor's W1, W2 and W5 and the forwarder run --runs times (default 3), alternating (forwarder
# pipelined, Conveyor W1 prefetch 0, W1 auto, with --with-durable-peers W1 fsync always and W1 fsync
# interval:10, forwarder latency, Conveyor W2, W5; then again), and
# the table gives the median of each figure, with every run's value in a table of their own (as
# bench/pushpull.sh does for PUSH/PULL). Every Conveyor and forwarder line carries the CPU time
# (user + system) of every process over the timed window: the table gives the CPU per task (per
# round trip for the forwarder, whose client, forwarder and worker are threads of one process),
# in all and for Conveyor by role (producer, broker, consumers); the Python seed's lines carry it
# too. Celery's are not measured.
# Then it prints a markdown table of the figures and the ratios between them, with the targets for
# W4 (Conveyor 1×1 ≤ 1.2 × C), W5 (≥ W1's tasks/s, every process within 25 % of the mean task
# count), W6 (≤ 300 broker bytes per queued task, idle consumer < 30 MB) and, with
# --with-durable-peers, durable W1 (fsync always ≥ 0.8 × the in-memory W1 of the same invocation,
# interval:10 ≥ 0.95 ×, both ≥ 5 × the faster of Celery durable and RabbitMQ) marked met or missed
# (a missed target is not a failure: the exit status only says whether everything ran and was
# verified). Every raw JSON line goes to bench/out/results.jsonl (overwritten), the table also to
# bench/out/results.md. Progress and the raw lines go to stderr, the table to stdout. Compare
# ratios from one run, never figures from different runs: the machines are shared and noisy.
#
# usage: bench/compare.sh [--scale F] [--window N] [--runs N] [--with-celery] [--with-durable-peers]
#   --scale F       multiplies every task/message count (default 1; 0.02 is a quick smoke run)
#   --runs N        alternating runs of the forwarder and Conveyor's W1, W2, W5 (default 3; 1 as before;
#                   each further run adds about 20 s at --scale 1)
#   --window N      tasks in flight for W1 (default 1000), the same for the forwarder and Python;
#                   also per producer for Conveyor's W5
#   --with-celery   Celery + Redis as a further peer (bench/celery/run.py: its own redis-server on
#                   127.0.0.1 and a free port, a threads-pool worker); installs what is missing first
#                   (python3 -m pip install celery redis; apt-get update and apt-get install -y
#                   redis-server, through sudo when not root). Celery runs ~1,000 tasks/s, so its W1
#                   stops submitting after 150 s and its W2 after 90 s (the table gives the counts);
#                   it adds about 4 minutes to a --scale 1 run (3.8 on a loaded machine)
#   --with-durable-peers  durable W1 (above): Conveyor's `bench w1 --fsync always` and
#                   `--fsync interval:10` in every alternating run (the binary must have --fsync),
#                   then once each Celery + Redis with appendfsync always (installed as for
#                   --with-celery) and RabbitMQ (bench/rabbitmq/run.py: a node of its own on
#                   127.0.0.1 and free ports, its directories in a scratch directory; installs
#                   what is missing: python3 -m pip install pika, with --break-system-packages when
#                   pip refuses an externally managed Python, and apt-get install -y
#                   rabbitmq-server, through sudo when not root). Both peers' W1 stop submitting
#                   after 150 s, as Celery's does; at --scale 1 it adds about 4 minutes
#   CONVEYOR_BIN=/path/to/conveyor  uses that binary; otherwise .build/release/conveyor, built with
#                   `swift build -c release --product conveyor` when missing
#   STEP_TIMEOUT=S  gives up on any one step after S seconds (default 900)
# Exit status: 0 when every step ran and every result was verified, 1 otherwise (the table is
# printed either way, with the failures marked).
set -euo pipefail

scale=1
window=1000
runs=3
with_celery=0
with_durable=0
while (($#)); do
    case "$1" in
        --scale) scale="${2:?--scale needs a value}"; shift 2 ;;
        --scale=*) scale="${1#--scale=}"; shift ;;
        --window) window="${2:?--window needs a value}"; shift 2 ;;
        --window=*) window="${1#--window=}"; shift ;;
        --runs) runs="${2:?--runs needs a value}"; shift 2 ;;
        --runs=*) runs="${1#--runs=}"; shift ;;
        --with-celery) with_celery=1; shift ;;
        --with-durable-peers) with_durable=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "compare.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
if ! python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0 else 1)' "$scale" 2>/dev/null; then
    echo "compare.sh: --scale must be a positive number" >&2
    exit 2
fi
if ! [[ "$window" =~ ^[1-9][0-9]*$ ]]; then
    echo "compare.sh: --window must be a positive integer" >&2
    exit 2
fi
if ! [[ "$runs" =~ ^[1-9][0-9]*$ ]]; then
    echo "compare.sh: --runs must be a positive integer" >&2
    exit 2
fi
step_timeout="${STEP_TIMEOUT:-900}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/bench/out"
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"

log() { echo "== $*" >&2; }

# Counts: the C programs get ten times W1's tasks (they are fast enough to need them for a stable
# figure); the forwarder's latency run gets W2's 10,000. The C SHA-256 program gets W4's 400 tasks,
# scaled exactly as `conveyor bench` and run.py scale them (max(1, int(400 × scale))).
count() { python3 -c 'import sys; print(max(100, int(float(sys.argv[1]) * float(sys.argv[2]))))' "$1" "$scale"; }
pushpull_messages="$(count 1000000)"
forwarder_messages="$(count 1000000)"
forwarder_latency="$(count 10000)"
w4_tasks="$(python3 -c 'import sys; print(max(1, int(400 * float(sys.argv[1]))))' "$scale")"

# --- build -------------------------------------------------------------------------------------
log "building bench/c/*.c into $out"
for source in "$root"/bench/c/*.c; do
    name="$(basename "$source" .c)"
    # -lcrypto: OpenSSL's SHA-256 for sha256.c (libssl-dev; scripts/ensure-deps.sh installs it)
    # shellcheck disable=SC2046  # pkg-config output is meant to split into words
    gcc -O2 -Wall -Werror -o "$out/$name-c" "$source" $(pkg-config --cflags --libs libzmq) -lpthread -lcrypto
done

if ! python3 -c 'import zmq' 2>/dev/null; then
    log "pyzmq is missing: python3 -m pip install pyzmq"
    python3 -m pip install --quiet pyzmq >&2
    python3 -c 'import zmq'
fi

sudo=()
if ((EUID != 0)); then sudo=(sudo); fi
apt_updated=0
# apt_install PACKAGE...: apt-get update (once a run), then apt-get install -y, through sudo when not root.
apt_install() {
    if ((!apt_updated)); then
        ${sudo[@]+"${sudo[@]}"} apt-get update >&2 || return 1
        apt_updated=1
    fi
    ${sudo[@]+"${sudo[@]}"} env DEBIAN_FRONTEND=noninteractive apt-get install -y "$@" >&2
}
# pip_install PACKAGE...: python3 -m pip install; again with --break-system-packages when pip
# refuses to install into an externally managed Python.
pip_install() {
    local output
    if output="$(python3 -m pip install --quiet "$@" 2>&1)"; then
        [[ -z "$output" ]] || echo "$output" >&2
        return 0
    fi
    echo "$output" >&2
    grep -qi 'externally.managed' <<<"$output" || return 1
    log "pip refused an externally managed Python: python3 -m pip install --break-system-packages $*"
    python3 -m pip install --quiet --break-system-packages "$@" >&2
}

# Celery, redis-py and redis-server for --with-celery and --with-durable-peers, pika and
# rabbitmq-server for --with-durable-peers; a failed install is a failure, not a stop.
celery_ready=0
celery_install_failure=""
if ((with_celery || with_durable)); then
    celery_ready=1
    if ! python3 -c 'import celery, redis' 2>/dev/null; then
        log "Celery or redis-py is missing: python3 -m pip install celery redis"
        if ! { pip_install celery redis && python3 -c 'import celery, redis'; }; then
            celery_ready=0
            celery_install_failure="celery install (pip install celery redis failed)"
        fi
    fi
    if ((celery_ready)) && ! command -v redis-server >/dev/null 2>&1; then
        log "redis-server is missing: apt-get update && apt-get install -y redis-server"
        if ! { apt_install redis-server && command -v redis-server >/dev/null 2>&1; }; then
            celery_ready=0
            celery_install_failure="celery install (apt-get install redis-server failed)"
        fi
    fi
fi
rabbitmq_ready=0
rabbitmq_install_failure=""
if ((with_durable)); then
    rabbitmq_ready=1
    if ! python3 -c 'import pika' 2>/dev/null; then
        log "pika is missing: python3 -m pip install pika"
        if ! { pip_install pika && python3 -c 'import pika'; }; then
            rabbitmq_ready=0
            rabbitmq_install_failure="rabbitmq install (pip install pika failed)"
        fi
    fi
    # Debian's server script (bench/rabbitmq/run.py runs it as this user, not through the wrapper).
    if ((rabbitmq_ready)) && ! [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] &&
        ! command -v rabbitmq-server >/dev/null 2>&1; then
        log "rabbitmq-server is missing: apt-get update && apt-get install -y rabbitmq-server"
        if ! { apt_install rabbitmq-server &&
            { [[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ]] || command -v rabbitmq-server >/dev/null 2>&1; }; }; then
            rabbitmq_ready=0
            rabbitmq_install_failure="rabbitmq install (apt-get install rabbitmq-server failed)"
        fi
    fi
fi

if [[ -n "${CONVEYOR_BIN:-}" ]]; then
    bin="$CONVEYOR_BIN"
elif [[ -x "$root/.build/release/conveyor" ]]; then
    bin="$root/.build/release/conveyor"
else
    log "building conveyor (swift build -c release --product conveyor)"
    (cd "$root" && swift build -c release --product conveyor >&2)
    bin="$(cd "$root" && swift build -c release --show-bin-path)/conveyor"
fi
[[ -x "$bin" ]] || { echo "compare.sh: no conveyor binary at $bin" >&2; exit 1; }

# --- run ---------------------------------------------------------------------------------------
failures=()

# step [--set KEY=VALUE] NAME COMMAND...: runs COMMAND (with a timeout), keeps the JSON lines of its
# stdout in results.jsonl, and notes a failure (non-zero exit, timeout, or no JSON at all) without
# stopping. --set gives each JSON line KEY (a string) where the line lacks it, so that the table
# can tell the lines of that step from others of the same workload.
step() {
    local set=""
    if [[ "$1" == --set ]]; then
        set="$2"
        shift 2
    fi
    local name="$1"
    shift
    log "$name: $*"
    local output status=0
    output="$(timeout --kill-after=10 "$step_timeout" "$@")" || status=$?
    local lines
    lines="$(grep '^{' <<<"$output" || true)"
    if [[ -n "$lines" && -n "$set" ]]; then
        lines="$(python3 -c '
import json, sys
key, _, value = sys.argv[1].partition("=")
for raw in sys.stdin:
    try:
        line = json.loads(raw)
    except ValueError:
        print(raw.rstrip("\n"))  # kept as it is; the table notes it
        continue
    if isinstance(line, dict):
        line.setdefault(key, value)
    print(json.dumps(line, ensure_ascii=False))
' "$set" <<<"$lines")"
    fi
    if [[ -n "$lines" ]]; then
        echo "$lines" >>"$results"
        echo "$lines" >&2
    fi
    if ((status != 0)) || [[ -z "$lines" ]]; then
        log "$name FAILED (exit status $status)"
        failures+=("$name (exit $status)")
    fi
}

# Conveyor's durable W1 needs `conveyor bench --fsync`; an older binary is a failure, noted once.
conveyor_durable=0
if ((with_durable)); then
    if "$bin" bench --help 2>&1 | grep -q -- '--fsync'; then
        conveyor_durable=1
    else
        log "$bin has no 'bench --fsync'; Conveyor's durable W1 skipped"
        failures+=("conveyor W1 durable (this conveyor's bench has no --fsync)")
    fi
fi

started=$SECONDS
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"

step "pushpull C" "$out/pushpull-c" "$pushpull_messages" 100
step "pushpull Swift" "$bin" bench pushpull --messages "$pushpull_messages" --size 100 --json
step "sha256 C W4 1 thread" "$out/sha256-c" --tasks "$w4_tasks" --iterations 20000 --threads 1 --json
step "sha256 C W4 2 threads" "$out/sha256-c" --tasks "$w4_tasks" --iterations 20000 --threads 2 --json

python_seed=(python3 "$root/bench/python-seed/run.py")
step "python-seed W1 prefetch 0" "${python_seed[@]}" W1 --scale "$scale" --window "$window" --prefetch 0
step "python-seed W1 prefetch 16" "${python_seed[@]}" W1 --scale "$scale" --window "$window" --prefetch 16
step "python-seed W2 W3 W4" "${python_seed[@]}" W2 W3 W4 --scale "$scale" --window "$window"

# The forwarder and Conveyor's W1, W2, W5 alternate, --runs times; the table takes the medians.
for ((run = 1; run <= runs; run++)); do
    of="run $run of $runs"
    step "forwarder pipelined ($of)" "$out/forwarder-c" pipelined "$forwarder_messages" "$window"
    step "conveyor W1 prefetch 0 ($of)" "$bin" bench w1 --scale "$scale" --window "$window" --prefetch 0 --json
    step "conveyor W1 prefetch auto ($of)" "$bin" bench w1 --scale "$scale" --window "$window" --prefetch auto --json
    if ((conveyor_durable)); then
        # The broker durable in a temporary data dir; the consumer's prefetch is its default (auto).
        for policy in always interval:10; do
            step --set durability="fsync $policy" "conveyor W1 durable fsync $policy ($of)" \
                "$bin" bench w1 --scale "$scale" --window "$window" --fsync "$policy" --json
        done
    fi
    step "forwarder latency ($of)" "$out/forwarder-c" latency "$forwarder_latency"
    step "conveyor W2 ($of)" "$bin" bench w2 --scale "$scale" --window "$window" --json
    step "conveyor W5 ($of)" "$bin" bench w5 --scale "$scale" --window "$window" --json
done
step "conveyor W3 W4" "$bin" bench w3 w4 --scale "$scale" --window "$window" --json
step "conveyor W6" "$bin" bench w6 --scale "$scale" --json

# run.py (Celery's, RabbitMQ's) gives up (and stops its servers) a little before the step's timeout.
peer_timeout="$((step_timeout > 60 ? step_timeout - 30 : step_timeout))"
celery_run=(python3 "$root/bench/celery/run.py" --scale "$scale" --window "$window" --timeout "$peer_timeout")
if ((with_celery)); then
    if ((celery_ready)); then
        step "celery W1" "${celery_run[@]}" W1
        step "celery W2 W3 W4" "${celery_run[@]}" W2 W3 W4
    else
        log "$celery_install_failure; Celery skipped"
        failures+=("$celery_install_failure")
    fi
fi
if ((with_durable)); then
    if ((celery_ready)); then
        step "celery W1 durable (appendfsync always)" "${celery_run[@]}" --durable W1
    else
        log "$celery_install_failure; Celery's durable W1 skipped"
        ((with_celery)) || failures+=("$celery_install_failure")
    fi
    if ((rabbitmq_ready)); then
        step "rabbitmq W1 durable" python3 "$root/bench/rabbitmq/run.py" W1 --scale "$scale" --window "$window" \
            --timeout "$peer_timeout"
    else
        log "$rabbitmq_install_failure; RabbitMQ skipped"
        failures+=("$rabbitmq_install_failure")
    fi
fi

elapsed=$((SECONDS - started))
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

# --- table -------------------------------------------------------------------------------------
python3 - "$results" "$scale" "$window" "$elapsed" "$load_before" "$load_after" "$with_celery" "$runs" \
    "$with_durable" "${failures[@]+"${failures[@]}"}" <<'PY' | tee "$out/results.md"
import json, math, re, statistics, sys

path, scale, window, elapsed, load_before, load_after, with_celery, runs, with_durable = sys.argv[1:10]
failures = sys.argv[10:]
scale = float(scale)
runs = int(runs)

c = {}          # C programs
py = {}         # python seed
conv = {}       # conveyor
cel = {}        # celery (--with-celery)
cel_durable = {}  # celery with Redis appendfsync always (--with-durable-peers)
rabbit = {}     # rabbitmq (--with-durable-peers)
swift_pushpull = None
repeated = {}   # ("c", mode) or ("conv", key) -> every run's line, in order
unreadable = 0  # lines of results.jsonl that are not a JSON object
for raw in open(path, encoding="utf-8"):
    raw = raw.strip()
    if not raw:
        continue
    try:
        line = json.loads(raw)
    except ValueError:
        line = None
    if not isinstance(line, dict):
        unreadable += 1
        continue
    impl = line.get("impl")
    if impl == "c":
        c["pushpull"] = line
    elif impl == "swift":
        swift_pushpull = line
    elif impl == "c-forwarder":
        repeated.setdefault(("c", line["mode"]), []).append(line)
    elif impl == "c-sha256":
        c[f"W4 {line['threads']}"] = line
    elif impl == "celery" and line.get("durable"):
        cel_durable[line.get("workload", "?")] = line
    elif impl == "celery":
        cel[line["workload"]] = line
    elif impl == "rabbitmq":
        rabbit[line.get("workload", "?")] = line
    elif impl == "python-seed":
        key = line["workload"] + (f" p{line.get('prefetch', 0)}" if line["workload"] == "W1" else "")
        py[key] = line
    elif "workload" in line:
        key = line["workload"]
        durability = str(line.get("durability") or "in-memory")
        if key == "W1" and durability.startswith("fsync"):
            key = f"W1 {durability}"  # "W1 fsync always", "W1 fsync interval:10": --with-durable-peers
        elif key == "W1":
            m = re.search(r"prefetch (\w+)", line.get("shape") or "")
            key += f" p{m.group(1) if m else 0}"
        if key in ("W1 p0", "W1 pauto", "W2", "W5") or key.startswith("W1 fsync"):
            repeated.setdefault(("conv", key), []).append(line)
        else:
            conv[key] = line


def primary(line):
    """The figure that orders a workload's runs (the median run gives the fields without a median)."""
    for keys in (("tasksPerSecond",), ("round_trips_per_sec",), ("latencyMicroseconds", "p50"), ("p50_us",)):
        value = line
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, (int, float)):
            return value if keys[0] in ("tasksPerSecond", "round_trips_per_sec") else -value
    return 0


def median_of(values, like):
    """Every number in `values` replaced by the median over the runs (dicts with the same keys in every
    run are merged key by key; anything else, such as tasks per process, comes from `like`)."""
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        return values[0] if len(set(values)) == 1 else statistics.median(values)
    if all(isinstance(v, dict) for v in values) and all(v.keys() == values[0].keys() for v in values):
        return {k: median_of([v[k] for v in values], like.get(k) if isinstance(like, dict) else None)
                for k in values[0]}
    return like


def median_line(lines):
    ordered = sorted(lines, key=primary)
    middle = ordered[(len(ordered) - 1) // 2]
    merged = median_of(lines, middle)
    merged["verified"] = all(line.get("verified", True) is not False for line in lines)
    merged["runs"] = len(lines)
    merged["everyRun"] = lines
    return merged


for (kind, key), lines in repeated.items():
    (c if kind == "c" else conv)[key] = median_line(lines)


def num(x, digits=0):
    if x is None:
        return "—"
    if isinstance(x, str):
        return x
    if digits == 0:
        return f"{x:,.0f}"
    return f"{x:,.{digits}f}"


def ratio(a, b, digits=2):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.{digits}f}"


def flag(line):
    """' (NOT VERIFIED)' when a workload line says so."""
    if line is not None and line.get("verified") is False:
        return " **NOT VERIFIED**"
    return ""


def get(line, *keys):
    for key in keys:
        if line is None:
            return None
        line = line.get(key) if isinstance(line, dict) else None
    return line


def part(line, shape):
    for p in (line or {}).get("parts", []):
        if p.get("shape") == shape:
            return p
    return None


def cell(line, *keys, digits=0):
    return num(get(line, *keys), digits) + flag(line)


print(f"## Conveyor vs peers — scale {scale:g}, window {window}")
print()
print(f"One invocation, {elapsed} s; load average before {load_before}, after {load_after}. "
      + (f"The forwarder's and Conveyor's W1, W2 and W5 figures are medians of {runs} alternating runs "
         "(every run below the tables). " if runs > 1 else "")
      + "Ratios are what count (shared, noisy machine). CPU µs per task: user + system time of every "
      "process of the run over its timed window, divided by the tasks (the forwarder: its one process, "
      "per round trip).")
print()
print("### PUSH/PULL (100-byte messages)")
print()
print("| impl | messages | msgs/s |")
print("| --- | ---: | ---: |")
cp, sp = c.get("pushpull"), swift_pushpull
print(f"| C (libzmq) | {num(get(cp, 'messages'))} | {num(get(cp, 'msgs_per_sec'))} |")
print(f"| Swift (conveyor bench pushpull) | {num(get(sp, 'messages'))} | {num(get(sp, 'msgs_per_sec'))} |")
print(f"| **Swift / C** | | **{ratio(get(sp, 'msgs_per_sec'), get(cp, 'msgs_per_sec'))}** |")
print()

celery_on = with_celery == "1"


def also(text):
    """The Celery column's cell, only with --with-celery (the table is unchanged without it)."""
    return f" {text} |" if celery_on else ""


def flagged(line, text):
    """A Celery cell: its figure, or FAILED when run.py printed a line without one."""
    if line is not None and line.get("verified") is False and text.startswith("—"):
        return "FAILED"
    return text


celery_pool = {"1×1": "prefork 1", "1×2": "threads 2", "2×1": "prefork 2"}
fp, fl = c.get("pipelined"), c.get("latency")
print("### Workloads")
print()
print("| figure | libzmq limit (C) | Python seed | Conveyor |" + also("Celery + Redis"))
print("| --- | ---: | ---: | ---: |" + also("---:"))
# Python seed prefetch 0 / 16 beside Conveyor prefetch 0 / auto (its default: enough for 5 ms of work).
W1_PAIRS = ((0, "0", "prefetch 0"), (16, "auto", "prefetch 16 (Python) / auto (Conveyor's default)"))
for p, q, label in W1_PAIRS:
    print(f"| W1 tasks/s, {label} | {num(get(fp, 'round_trips_per_sec'))} | "
          f"{cell(py.get(f'W1 p{p}'), 'tasksPerSecond')} | {cell(conv.get(f'W1 p{q}'), 'tasksPerSecond')} |"
          + also(flagged(cel.get("W1"), cell(cel.get("W1"), "tasksPerSecond"))))


def cpu(line):
    """CPU µs per task of a Conveyor or Python seed line."""
    return get(line, "cpu", "microsecondsPerTask")


def roles(line):
    """'producer / broker / consumer' CPU µs per task."""
    by_role = get(line, "cpu", "byRole")
    if not by_role:
        return "—"
    return " / ".join(num(by_role.get(role), 1) for role in ("producer", "broker", "consumer"))


for p, q, label in W1_PAIRS:
    print(f"| W1 CPU µs per task, all processes (C: per round trip), {label} | "
          f"{num(get(fp, 'cpu_us_per_round_trip'), 2)} | {num(cpu(py.get(f'W1 p{p}')), 1)} | "
          f"{num(cpu(conv.get(f'W1 p{q}')), 2)} |" + also("—"))
print(f"| W1 CPU µs per task by process: producer / broker / consumer, prefetch 16 (Python) / auto | — | "
      f"{roles(py.get('W1 p16'))} | {roles(conv.get('W1 pauto'))} |" + also("—"))
for q, ckey in (("p50", "p50_us"), ("p99", "p99_us"), ("max", "max_us")):
    print(f"| W2 {q} µs | {num(get(fl, ckey))} | {cell(py.get('W2'), 'latencyMicroseconds', q)} | "
          f"{cell(conv.get('W2'), 'latencyMicroseconds', q)} |"
          + also(flagged(cel.get("W2"), cell(cel.get("W2"), "latencyMicroseconds", q))))
print(f"| W2 CPU µs per round trip, all processes (producer / broker / consumer) | "
      f"{num(get(fl, 'cpu_us_per_round_trip'), 1)} | {num(cpu(py.get('W2')), 1)} | "
      f"{num(cpu(conv.get('W2')), 1)} ({roles(conv.get('W2'))}) |" + also("—"))
w3_tasks = get(conv.get("W3"), "tasks") or get(py.get("W3"), "tasks") or max(1, int(2000 * scale))
w3_ideal = math.ceil(w3_tasks / 50) * 0.010
print(f"| W3 wall s ({w3_tasks} × 10 ms on 50 threads; ideal {w3_ideal:.2f}) | — | "
      f"{cell(py.get('W3'), 'wallSeconds', digits=3)} | {cell(conv.get('W3'), 'wallSeconds', digits=3)} |"
      + also(flagged(cel.get("W3"), cell(cel.get("W3"), "wallSeconds", digits=3))))
c_w4 = {"1×1": c.get("W4 1"), "1×2": c.get("W4 2"), "2×1": None}  # C: pthreads, no processes
for shape in ("1×1", "1×2", "2×1"):
    celery_w4 = cell(part(cel.get("W4"), shape), "wallSeconds", digits=3)
    if part(cel.get("W4"), shape) is not None:
        celery_w4 += f" ({celery_pool[shape]})"
    print(f"| W4 wall s, {shape} | {cell(c_w4[shape], 'seconds', digits=3)} | "
          f"{cell(part(py.get('W4'), shape), 'wallSeconds', digits=3)} | "
          f"{cell(part(conv.get('W4'), shape), 'wallSeconds', digits=3)} |"
          + also(flagged(cel.get("W4"), celery_w4)))


def spread(line):
    """W5: (task counts per consumer process, the largest deviation from the mean in %). The mean
    is over the processes of the shape (4×4: 4), so that a process that ran nothing counts as 0."""
    counts = [n for _, n in sorted((get(line, "tasksPerProcess") or {}).items())]
    m = re.match(r"(\d+)×", get(line, "shape") or "")
    processes = max(len(counts), int(m.group(1)) if m else 0)
    if not counts or processes == 0:
        return counts, None
    counts += [0] * (processes - len(counts))
    mean = sum(counts) / processes
    return counts, (max(abs(n - mean) for n in counts) / mean * 100 if mean else None)


w5, w6 = conv.get("W5"), conv.get("W6")
w5_counts, w5_spread = spread(w5)
w6_consumer_mb = get(w6, "memory", "consumerIdleBytes")
w6_consumer_mb = w6_consumer_mb / 1_048_576 if w6_consumer_mb is not None else None
w5_tasks = f"{get(w5, 'tasks'):,} " if get(w5, "tasks") is not None else ""
print(f"| W5 tasks/s ({w5_tasks}echo from 2 producers, 4×4, prefetch auto) | — | — | "
      f"{cell(w5, 'tasksPerSecond')} |" + also("—"))
print(f"| W5 CPU µs per task, all processes (producers / broker / consumers) | — | — | "
      f"{num(cpu(w5), 2)} ({roles(w5)}) |" + also("—"))
print(f"| W5 tasks per consumer process (largest deviation from the mean) | — | — | "
      + (" / ".join(num(n) for n in w5_counts) + f" ({num(w5_spread, 1)} %)" if w5_counts else "—")
      + flag(w5) + " |" + also("—"))
w6_tasks = f"{get(w6, 'tasks'):,} " if get(w6, "tasks") is not None else ""
print(f"| W6 broker bytes per queued task beyond the payload ({w6_tasks}queued, no consumer) "
      f"| — | — | {cell(w6, 'memory', 'brokerBytesPerQueuedTask')} |" + also("—"))
print(f"| W6 idle consumer RSS MB (1×4) | — | — | {num(w6_consumer_mb, 1)}{flag(w6)} |" + also("—"))
print()
if celery_on:
    notes = []
    for key, what in (("W1", "W1"), ("W2", "W2")):
        line = cel.get(key)
        if line is not None and "tasks" in line:
            note = f"{what} ran {line['tasks']:,} of {line.get('requestedTasks', line['tasks']):,} tasks"
            if line.get("capped"):
                note += " (capped by its time budget)"
            notes.append(note)
    version = next((f"Celery {line['celeryVersion']} with Redis {line.get('redisVersion')}"
                    for line in cel.values() if line.get("celeryVersion")), "Celery with Redis")
    print(f"Celery peer: {version} as broker and result backend, JSON, default prefetch multiplier (4); "
          "threads pool of 4 for W1 and W2 (W1 with the same window), of 50 for W3"
          + ("; " + "; ".join(notes) if notes else "") + ".")
    print()

durable_on = with_durable == "1"
DURABLE = (("W1 fsync always", "always"), ("W1 fsync interval:10", "interval:10"))


def tps(line):
    """tasks/s of a line, None without one (a missing or failed step)."""
    value = get(line, "tasksPerSecond")
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def durable_peer():
    """(name, tasks/s) of the faster durable peer among the verified ones, or (None, None)."""
    peers = [(name, tps(line)) for name, line in (("Celery + Redis", cel_durable.get("W1")),
                                                  ("RabbitMQ", rabbit.get("W1")))
             if line is not None and line.get("verified") is not False and tps(line)]
    return max(peers, key=lambda peer: peer[1]) if peers else (None, None)


def ran(line):
    """A peer's task count: "N" or "N of M (capped by its time budget)"."""
    tasks = get(line, "tasks")
    if tasks is None:
        return "—"
    text = num(tasks)
    requested = get(line, "requestedTasks")
    if requested is not None and requested != tasks:
        text += f" of {num(requested)}"
    if get(line, "capped"):
        text += " (capped by its time budget)"
    return text


if durable_on:
    in_memory = conv.get("W1 pauto")
    print("### Durable W1 (--with-durable-peers)")
    print()
    print(f"W1 as above (echo, 1 consumer process × 4 threads, window {window}) with the broker's state on disk: "
          "Conveyor's broker journals to a temporary data dir (`conveyor bench w1 --fsync POLICY`; always: "
          "group commit, each batch of records fdatasynced before the acknowledgements and results it covers "
          "go out; interval:10: written at once, made durable at most 10 ms later); Redis "
          "with appendonly yes and appendfsync always (it fsyncs before it answers); RabbitMQ with durable "
          "queues, persistent messages (delivery_mode 2) and publisher confirms (sent once a message is on "
          "disk). The peers are driven from Python, as Celery is.")
    print()
    print("| W1 | tasks/s | tasks | CPU µs per task, all processes | × the same broker in memory |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(f"| Conveyor W1 in memory (prefetch auto; the reference) | {cell(in_memory, 'tasksPerSecond')} | "
          f"{num(get(in_memory, 'tasks'))} | {num(cpu(in_memory), 2)} | 1 |")
    for key, policy in DURABLE:
        line = conv.get(key)
        print(f"| Conveyor W1 durable (fsync {policy}) | {flagged(line, cell(line, 'tasksPerSecond'))} | "
              f"{num(get(line, 'tasks'))} | {num(cpu(line), 2)} | {ratio(tps(line), tps(in_memory))} |")
    line = cel_durable.get("W1")
    print(f"| Celery + Redis W1 durable (appendonly yes, appendfsync always) | "
          f"{flagged(line, cell(line, 'tasksPerSecond'))} | {ran(line)} | — | "
          f"{ratio(tps(line), tps(cel.get('W1')))} |")
    line = rabbit.get("W1")
    print(f"| RabbitMQ W1 durable (durable queues, persistent messages, publisher confirms) | "
          f"{flagged(line, cell(line, 'tasksPerSecond'))} | {ran(line)} | — | — |")
    print()
    notes = []
    line = cel_durable.get("W1")
    if line is not None and line.get("celeryVersion"):
        notes.append(f"Celery {line['celeryVersion']} with Redis {line.get('redisVersion')} "
                     f"(appendfsync reported by Redis: {line.get('redisAppendfsync')}), threads pool of 4")
    line = rabbit.get("W1")
    if line is not None and line.get("rabbitmqVersion"):
        notes.append(f"RabbitMQ {line['rabbitmqVersion']} ({line.get('queueType', 'classic')} queues) with pika "
                     f"{line.get('pikaVersion')}, 1 consumer process × {line.get('threads', 4)} threads, prefetch "
                     f"{line.get('prefetch')} per thread"
                     + (", replies published with confirms" if line.get("replyConfirms") else ""))
    for name, line in (("Celery", cel_durable.get("W1")), ("RabbitMQ", rabbit.get("W1"))):
        if line is not None and line.get("firstError"):
            notes.append(f"{name}'s first problem: {str(line['firstError'])[:200]}")
    if notes:
        print("Durable peers: " + "; ".join(notes) + ".")
        print()


def wall(line, shape):
    return get(part(line, shape), "wallSeconds")


def target(value, met, text):
    """The meaning cell of a row with a target: the target, then met or missed (— without a value)."""
    if value is None:
        return f"target {text}"
    return f"target {text} — " + ("met" if met(value) else "**missed**")


print("### Ratios")
print()
print("| ratio | value | meaning |")
print("| --- | ---: | --- |")
def as_float(text):
    return None if text == "—" else float(text)


for p, q, label in W1_PAIRS:
    conv_tps = get(conv.get(f"W1 p{q}"), "tasksPerSecond")
    share = ratio(conv_tps, get(fp, 'round_trips_per_sec'))
    print(f"| W1 Conveyor / C forwarder, prefetch {q} | {share} | share of the libzmq limit (1 = at the limit); "
          + target(as_float(share), lambda v: v >= 0.5, "≥ 0.5") + " |")
for p, q, label in W1_PAIRS:
    conv_tps = get(conv.get(f"W1 p{q}"), "tasksPerSecond")
    print(f"| W1 Conveyor (prefetch {q}) / Python seed (prefetch {p}) | "
          f"{ratio(conv_tps, get(py.get(f'W1 p{p}'), 'tasksPerSecond'), 1)} | times the seed design's throughput |")
if celery_on:
    for p, q, label in W1_PAIRS:
        conv_tps = get(conv.get(f"W1 p{q}"), "tasksPerSecond")
        print(f"| W1 Conveyor / Celery, prefetch {q} | {ratio(conv_tps, get(cel.get('W1'), 'tasksPerSecond'), 1)} | "
              "times Celery's throughput |")
for p, q, label in W1_PAIRS:
    print(f"| W1 Conveyor CPU per task / C forwarder CPU per round trip, prefetch {q} | "
          f"{ratio(cpu(conv.get(f'W1 p{q}')), get(fp, 'cpu_us_per_round_trip'))} | "
          "1 = as little CPU as the libzmq limit |")
print(f"| W1 Conveyor CPU per task (auto) / Python seed (16) | "
      f"{ratio(cpu(conv.get('W1 pauto')), cpu(py.get('W1 p16')), 3)} | below 1 = less CPU |")
if durable_on:
    peer_name, peer_tps = durable_peer()
    for (key, policy), least in zip(DURABLE, (0.8, 0.95)):
        share = ratio(tps(conv.get(key)), tps(conv.get("W1 pauto")))
        print(f"| W1 Conveyor durable (fsync {policy}) / in memory (prefetch auto) | {share} | "
              f"1 = durability costs nothing; " + target(as_float(share), lambda v, least=least: v >= least,
                                                           f"≥ {least:g}") + " |")
    for key, policy in DURABLE:
        times = ratio(tps(conv.get(key)), peer_tps, 1)
        against = f"{peer_name}, {num(peer_tps)} tasks/s" if peer_name else "no verified durable peer figure"
        print(f"| W1 Conveyor durable (fsync {policy}) / the faster durable peer ({against}) | {times} | "
              "times its throughput"
              + ("; the peers sync before they answer, interval:10 up to 10 ms later" if policy != "always" else "")
              + "; " + target(as_float(times), lambda v: v >= 5, "≥ 5") + " |")
w2_share = ratio(get(conv.get('W2'), 'latencyMicroseconds', 'p50'), get(fl, 'p50_us'))
print(f"| W2 Conveyor p50 / C forwarder p50 | {w2_share} | 1 = the libzmq limit; "
      + target(as_float(w2_share), lambda v: v <= 1.3, "≤ 1.3") + " |")
print(f"| W2 Conveyor p50 / Python seed p50 | "
      f"{ratio(get(conv.get('W2'), 'latencyMicroseconds', 'p50'), get(py.get('W2'), 'latencyMicroseconds', 'p50'))} "
      "| below 1 = faster |")
if celery_on:
    print(f"| W2 Conveyor p50 / Celery p50 | "
          f"{ratio(get(conv.get('W2'), 'latencyMicroseconds', 'p50'), get(cel.get('W2'), 'latencyMicroseconds', 'p50'), 3)} "
          "| below 1 = faster |")
w3_share = ratio(get(conv.get('W3'), 'wallSeconds'), w3_ideal)
print(f"| W3 Conveyor wall / ideal {w3_ideal:.2f} s | {w3_share} | 1 = ideal; "
      + target(as_float(w3_share), lambda v: v <= 1.05, "≤ 1.05") + " |")
print(f"| W3 Python seed wall / ideal {w3_ideal:.2f} s | {ratio(get(py.get('W3'), 'wallSeconds'), w3_ideal)} | "
      "1 = ideal |")
print(f"| W4 Conveyor 1×1 / Python seed 1×1 (wall) | {ratio(wall(conv.get('W4'), '1×1'), wall(py.get('W4'), '1×1'))} | "
      "below 1 = faster |")
w4_c = ratio(wall(conv.get('W4'), '1×1'), get(c.get("W4 1"), "seconds"))
print(f"| W4 Conveyor 1×1 / C 1×1 (wall; C: OpenSSL, no queue) | {w4_c} | 1 = as fast as C without a queue; "
      + target(None if w4_c == "—" else float(w4_c), lambda v: v <= 1.2, "≤ 1.2") + " |")
for shape in ("1×2", "2×1"):
    w4_share = ratio(wall(conv.get('W4'), shape), wall(conv.get('W4'), '1×1'))
    print(f"| W4 Conveyor {shape} / 1×1 (wall) | {w4_share} | 0.5 = perfect scaling on 2 cores; "
          + target(as_float(w4_share), lambda v: v <= 0.55, "≤ 0.55") + " |")
    print(f"| W4 Python seed {shape} / 1×1 (wall) | {ratio(wall(py.get('W4'), shape), wall(py.get('W4'), '1×1'))} | "
          "(the GIL: threads do not help) |")
w5_w1 = ratio(get(w5, "tasksPerSecond"), get(conv.get("W1 pauto"), "tasksPerSecond"))
print(f"| W5 Conveyor / W1 Conveyor (tasks/s, both prefetch auto) | {w5_w1} | "
      + target(None if w5_w1 == "—" else float(w5_w1), lambda v: v >= 1, "≥ 1") + " |")
print(f"| W5 largest deviation of a process from the mean task count | "
      f"{num(w5_spread, 1) + ' %' if w5_spread is not None else '—'} | "
      + target(w5_spread, lambda v: v <= 25, "≤ 25 %") + " |")
w6_bytes = get(w6, "memory", "brokerBytesPerQueuedTask")
print(f"| W6 broker bytes per queued task | {num(w6_bytes)} | " + target(w6_bytes, lambda v: v <= 300, "≤ 300") + " |")
print(f"| W6 idle consumer RSS MB | {num(w6_consumer_mb, 1)} | "
      + target(w6_consumer_mb, lambda v: v < 30, "< 30") + " |")
print()

if runs > 1:
    every = [
        ("C forwarder W1 round trips/s", fp, ("round_trips_per_sec",), 0),
        ("C forwarder W1 CPU µs per round trip", fp, ("cpu_us_per_round_trip",), 2),
        ("Conveyor W1 tasks/s, prefetch 0", conv.get("W1 p0"), ("tasksPerSecond",), 0),
        ("Conveyor W1 CPU µs per task, prefetch 0", conv.get("W1 p0"), ("cpu", "microsecondsPerTask"), 2),
        ("Conveyor W1 tasks/s, prefetch auto", conv.get("W1 pauto"), ("tasksPerSecond",), 0),
        ("Conveyor W1 CPU µs per task, prefetch auto", conv.get("W1 pauto"), ("cpu", "microsecondsPerTask"), 2),
        ("C forwarder W2 p50 µs", fl, ("p50_us",), 0),
        ("C forwarder W2 CPU µs per round trip", fl, ("cpu_us_per_round_trip",), 1),
        ("Conveyor W2 p50 µs", conv.get("W2"), ("latencyMicroseconds", "p50"), 0),
        ("Conveyor W2 p99 µs", conv.get("W2"), ("latencyMicroseconds", "p99"), 0),
        ("Conveyor W2 CPU µs per round trip", conv.get("W2"), ("cpu", "microsecondsPerTask"), 1),
        ("Conveyor W5 tasks/s", w5, ("tasksPerSecond",), 0),
        ("Conveyor W5 CPU µs per task", w5, ("cpu", "microsecondsPerTask"), 2),
    ]
    if durable_on:
        for key, policy in DURABLE:
            every += [(f"Conveyor W1 durable tasks/s, fsync {policy}", conv.get(key), ("tasksPerSecond",), 0),
                      (f"Conveyor W1 durable CPU µs per task, fsync {policy}", conv.get(key),
                       ("cpu", "microsecondsPerTask"), 2)]
    print(f"### Every run ({runs} alternating; the tables above give the medians)")
    print()
    print("| figure | " + " | ".join(f"run {i + 1}" for i in range(runs)) + " | median |")
    print("| --- |" + " ---: |" * (runs + 1))
    for label, line, keys, digits in every:
        values = [get(one, *keys) for one in (line or {}).get("everyRun", [])]
        values += [None] * (runs - len(values))
        print(f"| {label} | " + " | ".join(num(v, digits) for v in values) + f" | {num(get(line, *keys), digits)} |")
    if durable_on:
        # Durable over in-memory W1 (prefetch auto) run by run: the two ran next to each other.
        memory_runs = (conv.get("W1 pauto") or {}).get("everyRun", [])
        for key, policy in DURABLE:
            durable_runs = (conv.get(key) or {}).get("everyRun", [])
            values = [tps(d) / tps(m) if tps(d) and tps(m) else None for d, m in zip(durable_runs, memory_runs)]
            known = [v for v in values if v is not None]
            values += [None] * (runs - len(values))
            print(f"| Conveyor W1 durable fsync {policy} / in memory, same run | "
                  + " | ".join(num(v, 3) for v in values) + f" | {num(statistics.median(known) if known else None, 3)} |")
    print()
unverified = [f"C {name} thread(s)" for name, line in c.items() if line.get("verified") is False]
unverified += [f"Python seed {name}" for name, line in py.items() if line.get("verified") is False]
unverified += [f"Conveyor {name}" for name, line in conv.items() if line.get("verified") is False]
unverified += [f"Celery {name}" for name, line in cel.items() if line.get("verified") is False]
unverified += [f"Celery durable {name}" for name, line in cel_durable.items() if line.get("verified") is False]
unverified += [f"RabbitMQ {name}" for name, line in rabbit.items() if line.get("verified") is False]
problems = failures + [f"{name} not verified" for name in unverified]
if unreadable:
    problems.append(f"{unreadable} line(s) of results.jsonl were not JSON objects (left out)")
if problems:
    print("**Problems:** " + "; ".join(problems))
else:
    print("Every step ran; every result verified.")
PY

if ((${#failures[@]})); then
    exit 1
fi
exit 0
