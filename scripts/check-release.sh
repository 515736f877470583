#!/usr/bin/env bash
# Checks a release tarball the way a new machine would use it: unpacks it into a temporary folder
# and runs its conveyor with a clean environment (env -i PATH=/usr/bin:/bin: no Swift on PATH, no
# LD_LIBRARY_PATH, no HOME). It must need no Swift library, print the version of
# Sources/ConveyorProtocol/Version.swift, and do a real round trip: an in-memory broker on free
# ports, two consumer processes, `submit echo '{"x":1}'` answered with {"x":1} and a sha256 task
# (libcrypto) with the right digest; then broker and consumers stop cleanly on SIGTERM. Whatever it
# started is stopped and the folder removed, also on failure or Ctrl-C.
#
#   scripts/check-release.sh [TARBALL]    (default: dist/conveyor-VERSION-linux-ARCH.tar.gz)
#
# Exit status 0 when every check passed, 1 (with what failed) otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/release-common.sh

version=$(release_version)
name=$(release_name "$version")
tarball=${1:-dist/$name.tar.gz}
[ -f "$tarball" ] || release_fail "no $tarball: build it with scripts/release.sh"
started=$(date +%s)

work=$(mktemp -d "${TMPDIR:-/tmp}/conveyor-release-check.XXXXXX")
binary="$work/$name/conveyor"
pids=()
stop_everything() {
    local pid
    for pid in "${pids[@]+"${pids[@]}"}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do
        local alive=0
        for pid in "${pids[@]+"${pids[@]}"}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 0.1
    done
    for pid in "${pids[@]+"${pids[@]}"}"; do kill -KILL "$pid" 2>/dev/null || true; done
    # Consumer children of a supervisor that did not stop them: every process running this
    # unpacked binary (its path is this check's own temporary folder).
    local proc
    for proc in /proc/[0-9]*; do
        if [ "$(readlink "$proc/exe" 2>/dev/null)" = "$binary" ]; then kill -KILL "${proc#/proc/}" 2>/dev/null || true; fi
    done
    pids=()
}
cleanup() {
    stop_everything
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Whatever fails without a message of its own still says what and where.
trap 'echo "check-release: FAILED: line $LINENO: $BASH_COMMAND (status $?)" >&2' ERR

fail() {
    echo "check-release: FAILED: $*" >&2
    local log
    for log in "$work"/*.log; do
        [ -s "$log" ] || continue
        echo "--- $(basename "$log") (last lines)" >&2
        tail -n 15 "$log" >&2
    done
    exit 1
}

# Runs the unpacked binary (or a command) as a machine without Swift would. (Processes started in
# the background use the array, so that env execs conveyor and $! is conveyor's pid.)
clean_environment=(env -i PATH=/usr/bin:/bin)
clean() {
    "${clean_environment[@]}" "$@"
}

echo "check-release: $tarball" >&2
tar -xzf "$tarball" -C "$work" || fail "cannot unpack $tarball"
[ -x "$binary" ] || fail "$tarball has no executable $name/conveyor"
for file in README.md CHANGELOG.md docs/RUNBOOK.md; do
    [ -f "$work/$name/$file" ] || fail "$tarball has no $name/$file"
done
release_check_linkage "$binary"
if clean sh -c 'command -v swift' >/dev/null 2>&1; then
    echo "check-release: note: a swift is on PATH=/usr/bin:/bin here; the linkage check above is what shows the binary does not need it" >&2
fi

line=$(clean "$binary" --version 2>&1) || fail "conveyor --version failed: $line"
case "$line" in
    "$version (protocol CVY"*"; serves "*"; journal format "[0-9]*")") ;;
    *) fail "conveyor --version printed '$line'; expected '$version (protocol CVYn; serves …; journal format n)'" ;;
esac
echo "check-release: --version: $line" >&2

cd "$work"
# Made before the processes start, so that reading them never races the shell's redirections.
: > broker.out; : > broker.log; : > consumer.out; : > consumer.log; : > submit.log
"${clean_environment[@]}" "$binary" broker --in-memory --frontend 'tcp://127.0.0.1:*' --backend 'tcp://127.0.0.1:*' \
    > broker.out 2> broker.log &
pids+=("$!")
broker_pid=$!
frontend="" backend=""
for _ in $(seq 100); do
    frontend=$(sed -n 's/^frontend //p' broker.out)
    backend=$(sed -n 's/^backend //p' broker.out)
    [ -n "$frontend" ] && [ -n "$backend" ] && break
    kill -0 "$broker_pid" 2>/dev/null || fail "the broker exited before it printed its endpoints"
    sleep 0.1
done
[ -n "$frontend" ] && [ -n "$backend" ] || fail "the broker printed no endpoints within 10 s"

"${clean_environment[@]}" "$binary" consumer --backend "$backend" --processes 2 --threads 2 > consumer.out 2> consumer.log &
pids+=("$!")
consumer_pid=$!

result=$(clean timeout 60 "$binary" submit echo '{"x":1}' --broker "$frontend" 2> submit.log) \
    || fail "conveyor submit echo '{\"x\":1}' failed (status $?): $result"
[ "$result" = '{"x":1}' ] || fail "conveyor submit echo '{\"x\":1}' printed '$result', not {\"x\":1}"
echo "check-release: submit echo '{\"x\":1}' -> $result" >&2

expected=$(printf '%s' conveyor | sha256sum | cut -d' ' -f1)
result=$(clean timeout 60 "$binary" submit sha256 '{"seed":"conveyor","iterations":0}' --broker "$frontend" 2>> submit.log) \
    || fail "conveyor submit sha256 failed (status $?): $result"
[ "$result" = "{\"digest\":\"$expected\"}" ] || fail "conveyor submit sha256 printed '$result', not the digest $expected"
echo "check-release: submit sha256 -> the digest sha256sum gives" >&2

stats=$(clean timeout 30 "$binary" stats --broker "$frontend" 2>> submit.log) || fail "conveyor stats failed: $stats"
grep -q '^consumers: 2$' <<<"$stats" || fail "conveyor stats does not show the 2 consumer processes: $stats"

# Waits up to 30 s for a child to exit (a zombie has exited) and sets exit_code to its status.
wait_for_exit() {
    local pid=$1 state=""
    for _ in $(seq 300); do
        state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || state=gone
        case "$state" in Z|gone|"") break ;; esac
        sleep 0.1
    done
    case "$state" in Z|gone|"") ;; *) return 1 ;; esac
    exit_code=0
    wait "$pid" || exit_code=$?
}
kill -TERM "$consumer_pid"
wait_for_exit "$consumer_pid" || fail "the consumer did not stop within 30 s of SIGTERM"
[ "$exit_code" -eq 0 ] || fail "the consumer exited with status $exit_code on SIGTERM (expected 0)"
kill -TERM "$broker_pid"
wait_for_exit "$broker_pid" || fail "the broker did not stop within 30 s of SIGTERM"
[ "$exit_code" -eq 0 ] || fail "the broker exited with status $exit_code on SIGTERM (expected 0)"
pids=()
for proc in /proc/[0-9]*; do
    if [ "$(readlink "$proc/exe" 2>/dev/null)" = "$binary" ]; then
        fail "a conveyor process (pid ${proc#/proc/}) is still running after broker and consumer stopped"
    fi
done

echo "check-release: ok ($version, $(($(date +%s) - started)) s)" >&2
