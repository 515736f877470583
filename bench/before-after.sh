#!/usr/bin/env bash
# Before / after: two builds of Conveyor measured in one run, the same way, for docs/BENCHMARKS.md.
#
# Builds OLD_REF and NEW_REF (git commits, branches or tags) in release mode, each in a git worktree
# of its own under a temporary folder (removed at the end) with a scratch path of its own in the
# repository, .build-ref-<commit> (ignored by git, kept, so that a second run reuses the build).
# Without NEW_REF the new build is the working tree as it is (`swift build -c release --product
# conveyor`, into .build as bench/compare.sh does). Then:
#   - W1, W2, W5: --rounds rounds (default 7), alternating the builds (old, new; then new, old; …).
#     In each round each build runs `conveyor bench wN --scale F --json` twice: at the full --scale
#     and at --scale × --small (default 0.1). Both runs are measured from the outside by
#     bench/cputime.py: the user + system time of the whole process tree (the bench process, which
#     is the producer, the broker, the consumer processes). The CPU per task is the difference of
#     the two runs divided by the difference of their tasks, so that start-up, warm-up and teardown
#     cancel out and a build that does not measure itself (the old one) is measured exactly as the
#     new one. Also per role (producer = the bench process, exact; broker and consumers from
#     samples every 50 ms), the whole-run CPU per task (start-up included), and the wall figures
#     (W1, W5 tasks/s; W2 p50, p99) of the full run. The table gives the medians over the rounds, and
#     every round's value below it. When a build reports its own CPU over the timed window
#     (`conveyor bench --json` "cpu", after this script was added) that figure is shown as a
#     cross-check.
#   - W3 (wall seconds) and W6 (broker bytes per queued task, idle consumer RSS) once per build, at
#     --scale or 1, whichever is smaller (W6 at --scale 1 already queues 1,000,000 tasks).
# Only flags that every build of `conveyor bench` since a1d4e96 understands are used (--scale,
# --window, --prefetch, --json). CONVEYOR_BIN is set to each build's own binary for its runs, so the
# broker and consumers are always of the same build as the producer.
#
# Prints a markdown table (old / new / new ÷ old) ready for docs/BENCHMARKS.md to stdout and to
# bench/out/before-after.md; every raw line (bench JSON + cputime JSON) goes to
# bench/out/before-after.jsonl; progress to stderr. Run it on a quiet machine: it warns when the
# load average is above 0.5.
#
# usage: bench/before-after.sh [options] OLD_REF [NEW_REF]
#   --rounds N      alternating rounds for W1, W2, W5 (default 7)
#   --scale F       task counts of the full runs (default 1: W1 100,000, W2 10,000, W5 200,000);
#                   3 makes the CPU figures tighter (start-up noise is spread over 3 times the tasks)
#                   for about 2.5 times the time
#   --small F       the shorter run's share of --scale (default 0.1)
#   --window N      tasks in flight (default 1000)
#   --no-w6         skip W6 (at --scale 1 it queues 1,000,000 tasks: ~90 s and ~600 MB per build)
#   --build-only    build both and print the two binaries' paths
#   STEP_TIMEOUT=S  gives up on any one run after S seconds (default 900)
# Exit status: 0 when every run finished and was verified, 1 otherwise (the table is printed
# either way), 2 for bad arguments.
set -euo pipefail

rounds=7
scale=1
small=0.1
window=1000
with_w6=1
build_only=0
refs=()
while (($#)); do
    case "$1" in
        --rounds) rounds="${2:?--rounds needs a value}"; shift 2 ;;
        --scale) scale="${2:?--scale needs a value}"; shift 2 ;;
        --small) small="${2:?--small needs a value}"; shift 2 ;;
        --window) window="${2:?--window needs a value}"; shift 2 ;;
        --no-w6) with_w6=0; shift ;;
        --build-only) build_only=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        -*) echo "before-after.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
        *) refs+=("$1"); shift ;;
    esac
done
if ((${#refs[@]} < 1 || ${#refs[@]} > 2)); then
    echo "usage: bench/before-after.sh [options] OLD_REF [NEW_REF]   (see --help)" >&2
    exit 2
fi
if ! [[ "$rounds" =~ ^[1-9][0-9]*$ && "$window" =~ ^[1-9][0-9]*$ ]]; then
    echo "before-after.sh: --rounds and --window must be positive integers" >&2
    exit 2
fi
if ! python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(0 if a > 0 and 0 < b < 1 else 1)' \
    "$scale" "$small" 2>/dev/null; then
    echo "before-after.sh: --scale must be positive and --small between 0 and 1" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$root/bench/out"
mkdir -p "$out"
log() { echo "== $*" >&2; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/conveyor-before-after.XXXXXX")"
worktrees=()
cleanup() {
    local worktree
    for worktree in ${worktrees[@]+"${worktrees[@]}"}; do
        git -C "$root" worktree remove --force "$worktree" >/dev/null 2>&1 || true
    done
    git -C "$root" worktree prune >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# build REF: builds the commit REF names in a worktree of its own; sets `built` to the binary and
# `label` to "REF (commit)". Reuses .build-ref-<commit> when it holds a build of that commit.
build() {
    local ref="$1" sha short scratch worktree bindir
    sha="$(git -C "$root" rev-parse --verify "$ref^{commit}")" || {
        echo "before-after.sh: '$ref' is not a commit" >&2
        exit 2
    }
    short="${sha:0:12}"
    scratch="$root/.build-ref-$short"
    label="$ref ($short)"
    [[ "$ref" == "$short" || "$ref" == "$sha" ]] && label="$short"
    if [[ -x "$scratch/release/conveyor" && "$(cat "$scratch/conveyor-commit" 2>/dev/null)" == "$sha" ]]; then
        log "$ref: reusing the build in $scratch"
        built="$scratch/release/conveyor"
        return
    fi
    worktree="$tmp/$short"
    log "$ref: git worktree add $worktree $short; swift build -c release --product conveyor --scratch-path $scratch"
    git -C "$root" worktree add --detach "$worktree" "$sha" >&2
    worktrees+=("$worktree")
    # The same dependency versions as this checkout's, where it has a Package.resolved.
    if [[ -f "$root/Package.resolved" && ! -e "$worktree/Package.resolved" ]]; then
        cp "$root/Package.resolved" "$worktree/Package.resolved"
    fi
    (cd "$worktree" && swift build -c release --product conveyor --scratch-path "$scratch" >&2)
    bindir="$(cd "$worktree" && swift build -c release --scratch-path "$scratch" --show-bin-path)"
    built="$bindir/conveyor"
    [[ -x "$built" ]] || { echo "before-after.sh: no conveyor binary at $built" >&2; exit 1; }
    echo "$sha" >"$scratch/conveyor-commit"
    git -C "$root" worktree remove --force "$worktree" >/dev/null 2>&1 || true
}

build "${refs[0]}"
old_bin="$built"
old_label="$label"
if ((${#refs[@]} == 2)); then
    build "${refs[1]}"
    new_bin="$built"
    new_label="$label"
else
    log "working tree: swift build -c release --product conveyor"
    (cd "$root" && swift build -c release --product conveyor >&2)
    new_bin="$(cd "$root" && swift build -c release --show-bin-path)/conveyor"
    new_label="working tree ($(git -C "$root" rev-parse --short=12 HEAD)$(git -C "$root" diff --quiet HEAD -- 2>/dev/null || echo ", with uncommitted changes"))"
fi
if ((build_only)); then
    echo "old: $old_bin"
    echo "new: $new_bin"
    exit 0
fi

load="$(cut -d' ' -f1 /proc/loadavg)"
if python3 -c 'import sys; sys.exit(0 if float(sys.argv[1]) > 0.5 else 1)' "$load"; then
    log "warning: load average $load: the machine is busy, the figures will be noisy"
fi

python3 - "$root/bench" "$out" "$old_bin" "$old_label" "$new_bin" "$new_label" "$rounds" "$scale" "$small" \
    "$window" "$with_w6" "${STEP_TIMEOUT:-900}" <<'PY'
import json, os, statistics, sys, time

bench_dir, out, old_bin, old_label, new_bin, new_label = sys.argv[1:7]
rounds, scale, small, window, with_w6, step_timeout = (int(sys.argv[7]), float(sys.argv[8]), float(sys.argv[9]),
                                                       int(sys.argv[10]), sys.argv[11] == "1", float(sys.argv[12]))
sys.path.insert(0, bench_dir)
import cputime  # noqa: E402

builds = {"old": (old_bin, old_label), "new": (new_bin, new_label)}
raw = open(os.path.join(out, "before-after.jsonl"), "w", encoding="utf-8")
problems = []
started = time.monotonic()
load_before = open("/proc/loadavg").read().split()[:3]


def run(which, workload, at_scale, size):
    """One `conveyor bench WORKLOAD` of one build, measured by cputime; returns (bench line, cputime line)."""
    binary, label = builds[which]
    command = [binary, "bench", workload, "--scale", f"{at_scale:g}", "--window", str(window), "--json"]
    if workload in ("w1", "w2", "w3", "w5"):
        command += ["--prefetch", "auto"]
    env = dict(os.environ, CONVEYOR_BIN=binary)
    stdout, measured = cputime.measure(command, env=env, echo=False, timeout=step_timeout)
    lines = [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]
    result = lines[-1] if lines else None
    raw.write(json.dumps({"build": which, "label": label, "workload": workload.upper(), "size": size,
                          "scale": at_scale, "bench": result, "cputime": measured}, ensure_ascii=False) + "\n")
    raw.flush()
    ok = measured["exitStatus"] == 0 and result is not None and result.get("verified") is True
    summary = (f"{result.get('tasks')} tasks, {result.get('tasksPerSecond', 0):,.0f} tasks/s, "
               f"{measured['cpuSeconds']:.3f} CPU s" if result else "no result")
    print(f"== {which} {workload} {size} (scale {at_scale:g}): {summary}"
          + ("" if ok else f" — FAILED (exit {measured['exitStatus']})"), file=sys.stderr, flush=True)
    if not ok:
        problems.append(f"{which} {workload} {size} (exit {measured['exitStatus']}"
                        + (", not verified" if result is not None and result.get("verified") is not True else "") + ")")
        return None, measured
    return result, measured


ROLES = (("producer", "root"), ("broker", "broker"), ("consumer", "consumer"))
# figures[which][workload] -> list over rounds of dicts
figures = {"old": {}, "new": {}}
for number in range(rounds):
    order = ("old", "new") if number % 2 == 0 else ("new", "old")
    print(f"== round {number + 1} of {rounds}: {order[0]}, then {order[1]}", file=sys.stderr, flush=True)
    for which in order:
        for workload in ("w1", "w2", "w5"):
            full, full_cpu = run(which, workload, scale, "full")
            short, short_cpu = run(which, workload, scale * small, "small")
            if full is None or short is None:
                continue
            tasks = full["tasks"] - short["tasks"]
            if tasks <= 0:
                problems.append(f"{which} {workload}: the small run has as many tasks as the full one")
                continue
            entry = {
                "cpu": (full_cpu["cpuSeconds"] - short_cpu["cpuSeconds"]) * 1e6 / tasks,
                "whole": full_cpu["cpuSeconds"] * 1e6 / full["tasks"],
                "inside": (full.get("cpu") or {}).get("microsecondsPerTask"),
                "tasksPerSecond": full.get("tasksPerSecond"),
                "p50": (full.get("latencyMicroseconds") or {}).get("p50"),
                "p99": (full.get("latencyMicroseconds") or {}).get("p99"),
                "tasks": full["tasks"],
            }
            for role, key in ROLES:
                entry[role] = (full_cpu["byRole"][key] - short_cpu["byRole"][key]) * 1e6 / tasks
            figures[which].setdefault(workload.upper(), []).append(entry)

once = {"old": {}, "new": {}}
for workload in ("w3",) + (("w6",) if with_w6 else ()):
    for which in ("old", "new"):
        result, _ = run(which, workload, min(scale, 1.0), "once")
        once[which][workload.upper()] = result
elapsed = time.monotonic() - started
load_after = open("/proc/loadavg").read().split()[:3]


def median(which, workload, key):
    values = [entry[key] for entry in figures[which].get(workload, []) if entry.get(key) is not None]
    return statistics.median(values) if values else None


def fmt(value, digits):
    if value is None:
        return "—"
    return f"{value:,.{digits}f}"


def ratio(new, old, digits=3):
    if new is None or old is None or old == 0:
        return "—"
    return f"{new / old:.{digits}f}"


def get(line, *keys):
    for key in keys:
        line = line.get(key) if isinstance(line, dict) else None
    return line


rows = []


def row(label, old, new, digits):
    rows.append(f"| {label} | {fmt(old, digits)} | {fmt(new, digits)} | {ratio(new, old)} |")


def roles_row(label, workload):
    old = [median("old", workload, role) for role, _ in ROLES]
    new = [median("new", workload, role) for role, _ in ROLES]
    rows.append(f"| {label} | " + " / ".join(fmt(v, 2) for v in old) + " | "
                + " / ".join(fmt(v, 2) for v in new) + " | "
                + " / ".join(ratio(n, o, 2) for n, o in zip(new, old)) + " |")


tasks_of = {w: (figures["new"].get(w) or figures["old"].get(w) or [{}])[0].get("tasks") for w in ("W1", "W2", "W5")}
for workload, what in (("W1", "task"), ("W2", "round trip"), ("W5", "task")):
    count = f"{tasks_of[workload]:,} " if tasks_of[workload] else ""
    row(f"**{workload} CPU µs per {what}** ({count}tasks; all processes)",
        median("old", workload, "cpu"), median("new", workload, "cpu"), 2)
    roles_row(f"{workload} CPU µs per {what}: producer / broker / consumers", workload)
    row(f"{workload} CPU µs per {what}, whole run (start-up and warm-up included)",
        median("old", workload, "whole"), median("new", workload, "whole"), 2)
    if median("new", workload, "inside") is not None or median("old", workload, "inside") is not None:
        row(f"{workload} CPU µs per {what}, the build's own figure (timed window)",
            median("old", workload, "inside"), median("new", workload, "inside"), 2)
    if workload == "W2":
        row("W2 p50 µs", median("old", "W2", "p50"), median("new", "W2", "p50"), 0)
        row("W2 p99 µs", median("old", "W2", "p99"), median("new", "W2", "p99"), 0)
    else:
        row(f"{workload} tasks/s", median("old", workload, "tasksPerSecond"),
            median("new", workload, "tasksPerSecond"), 0)
w3_old, w3_new = get(once["old"].get("W3"), "wallSeconds"), get(once["new"].get("W3"), "wallSeconds")
w3_tasks = get(once["new"].get("W3"), "tasks") or get(once["old"].get("W3"), "tasks")
w3_ideal = -(-(w3_tasks or 0) // 50) * 0.010
row(f"W3 wall s ({w3_tasks or '—'} × sleep 10 ms on 1 × 50; ideal {w3_ideal:.2f}; one run)", w3_old, w3_new, 3)
if with_w6:
    row("W6 broker bytes per queued task beyond the payload (one run)",
        get(once["old"].get("W6"), "memory", "brokerBytesPerQueuedTask"),
        get(once["new"].get("W6"), "memory", "brokerBytesPerQueuedTask"), 0)
    def megabytes(line):
        value = get(line, "memory", "consumerIdleBytes")
        return value / 1_048_576 if value is not None else None

    row("W6 idle consumer RSS MB (one run)", megabytes(once["old"].get("W6")), megabytes(once["new"].get("W6")), 1)

text = []
text.append(f"## Before / after: {old_label} → {new_label}")
text.append("")
text.append(
    f"One run of `bench/before-after.sh`, {elapsed:.0f} s of runs (the builds not counted); load average before {' '.join(load_before)}, after "
    f"{' '.join(load_after)}. W1, W2, W5: medians of {rounds} alternating rounds (old, new; then new, old; …) at "
    f"--scale {scale:g}, window {window}, prefetch auto. CPU per task: user + system time of every process of "
    f"the run (the producer, the broker, the consumer processes), measured from the outside "
    f"(bench/cputime.py) for both builds alike; the run at --scale {scale:g} minus a run at --scale "
    f"{scale * small:g}, divided by the difference in tasks (start-up, warm-up and teardown cancel out). "
    "The producer's share is exact; the broker's and the consumers' come from samples every 50 ms "
    "(their teardown is left out). Wall figures are from the full runs; W3 and W6 ran once per build.")
text.append("")
text.append("| figure | old | new | new / old |")
text.append("| --- | ---: | ---: | ---: |")
text += rows
text.append("")
verdict = []
for workload in ("W1", "W2", "W5"):
    old, new = median("old", workload, "cpu"), median("new", workload, "cpu")
    if old and new is not None:
        verdict.append(f"{workload} {new / old:.3f} ({'met' if new / old <= 1.05 else '**missed**'})")
if verdict:
    text.append("CPU per task, new / old (target ≤ 1.05: within 5 % of before, or better): " + "; ".join(verdict) + ".")
    text.append("")

text.append("### Every round (CPU µs per task, all processes; tasks/s or p50 µs)")
text.append("")
text.append("| build | figure | " + " | ".join(f"round {i + 1}" for i in range(rounds)) + " | median |")
text.append("| --- | --- |" + " ---: |" * (rounds + 1))
for workload in ("W1", "W2", "W5"):
    for which in ("old", "new"):
        entries = figures[which].get(workload, [])
        for key, label, digits in (("cpu", f"{workload} CPU µs", 2),
                                   ("p50" if workload == "W2" else "tasksPerSecond",
                                    "W2 p50 µs" if workload == "W2" else f"{workload} tasks/s", 0)):
            values = [fmt(entry.get(key), digits) for entry in entries] + ["—"] * (rounds - len(entries))
            text.append(f"| {which} | {label} | " + " | ".join(values) + f" | {fmt(median(which, workload, key), digits)} |")
text.append("")
text.append(f"old: {old_label}; new: {new_label}.")
text.append("")
text.append("**Problems:** " + "; ".join(problems) if problems else "Every run finished; every result verified.")
report = "\n".join(text) + "\n"
sys.stdout.write(report)
with open(os.path.join(out, "before-after.md"), "w", encoding="utf-8") as handle:
    handle.write(report)
sys.exit(1 if problems else 0)
PY
