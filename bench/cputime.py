#!/usr/bin/env python3
"""Runs a command and measures, from the outside, the CPU time (user + system) of its whole
process tree: the same way for any build of `conveyor bench`, including builds that do not
measure themselves (bench/before-after.sh uses it so that an old and a new commit are measured
identically).

usage: cputime.py [--interval S] [--timeout S] -- COMMAND [ARG...]

The command's standard output is passed through line by line (standard error goes straight
through); then one JSON line follows:
  {"impl": "cputime", "command": [...], "exitStatus": 0, "wallSeconds": W,
   "cpuSeconds": T, "userSeconds": U, "systemSeconds": S,     the whole tree, exact (see below)
   "byRole": {"root": R, "broker": B, "consumer": C, "other": O, "unattributed": X},   seconds
   "processes": [{"pid": ..., "role": ..., "seconds": ...}, ...]}

How:
  - the whole tree (cpuSeconds, userSeconds, systemSeconds): wait4()'s resource usage of the
    command, which covers it and every descendant it waited for (Foundation's Process, Python's
    subprocess and the consumer supervisor all wait for their children), in microseconds;
  - the command's own process ("root"; for `conveyor bench`: the producer): its CPU clock
    (clock_gettime on the clock id of the process, nanoseconds) read once it has exited but before
    it is reaped (waitid with WNOWAIT);
  - every other process of the tree: found by parent pid in /proc/*/stat every --interval × 2 s,
    its CPU clock read every --interval s (default 0.05); its last reading counts, so the few
    milliseconds between that reading and its exit (teardown) are in "unattributed", with any
    process that lived less than the discovery interval. Roles come from the command line:
    "broker", "consumer" (a supervisor's children included), else "other".
The figures include the command's start-up and teardown: subtract a shorter run of the same
command to get the cost per task (before-after.sh does).
The command leads a process group of its own; --timeout S (default none) kills that whole group
after S seconds (exit status 124 then, as timeout(1)).
Exit status: the command's (128 + N if a signal N ended it).
"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_clock(pid):
    """The clock id of a whole process's CPU time (Linux: MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED))."""
    return ((~pid) << 3) | 2


def cpu_seconds(pid):
    """The process's CPU time (all its threads, user + system) in seconds, or None when it is gone."""
    try:
        return time.clock_gettime(process_clock(pid))
    except OSError:
        return None


def stat_fields(pid):
    """The fields of /proc/PID/stat after the command name (index 0 is the state, 1 the parent)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            text = handle.read().decode("ascii", "replace")
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def descendants(root):
    """Every living descendant of `root` (not root itself), by parent pid."""
    children = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = stat_fields(int(entry.name))
        if fields and len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, frontier = [], list(children.get(root, []))
    while frontier:
        pid = frontier.pop()
        found.append(pid)
        frontier += children.get(pid, [])
    return found


def role_of(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            words = handle.read().split(b"\0")
    except OSError:
        return "other"
    for word in words[1:3]:
        if word in (b"broker", b"consumer"):
            return word.decode()
    return "other"


def measure(command, interval=0.05, env=None, echo=True, timeout=None):
    """Runs `command`; returns (its standard output as text, the measurement as a dict)."""
    started = time.monotonic()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    lines = []

    def pump():
        for raw in child.stdout:
            text = raw.decode("utf-8", "replace")
            lines.append(text)
            if echo:
                sys.stdout.write(text)
                sys.stdout.flush()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    last = {}      # pid -> last CPU reading
    roles = {}     # pid -> role
    polls = 0
    timed_out = False

    def kill_group():
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            child.kill()

    try:
        while True:
            exited = os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if exited is not None and exited.si_pid == child.pid:
                break
            if timeout is not None and not timed_out and time.monotonic() - started > timeout:
                print(f"cputime.py: {command[0]} ran longer than {timeout} s: killed", file=sys.stderr)
                timed_out = True
                kill_group()
            if polls % 2 == 0:
                for pid in descendants(child.pid):
                    if pid not in roles:
                        roles[pid] = role_of(pid)
            polls += 1
            for pid in roles:
                value = cpu_seconds(pid)
                if value is not None:
                    last[pid] = value
            time.sleep(interval)
        root_seconds = cpu_seconds(child.pid)  # a zombie still has its clock
        if root_seconds is None:
            fields = stat_fields(child.pid) or []
            root_seconds = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS if len(fields) > 12 else 0.0
        _, status, usage = os.wait4(child.pid, 0)
        if timed_out:
            kill_group()  # what the killed command left behind
    except BaseException:
        kill_group()
        raise
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.monotonic() - started
    reader.join(timeout=10)
    total = usage.ru_utime + usage.ru_stime
    by_role = {"root": root_seconds, "broker": 0.0, "consumer": 0.0, "other": 0.0}
    for pid, value in last.items():
        by_role[roles[pid]] += value
    by_role["unattributed"] = max(0.0, total - sum(by_role.values()))
    exit_status = 124 if timed_out else child.returncode if child.returncode >= 0 else 128 - child.returncode
    record = {
        "impl": "cputime", "command": list(command), "exitStatus": exit_status,
        "wallSeconds": round(wall, 6), "cpuSeconds": round(total, 6),
        "userSeconds": round(usage.ru_utime, 6), "systemSeconds": round(usage.ru_stime, 6),
        "byRole": {key: round(value, 6) for key, value in by_role.items()},
        "processes": [{"pid": child.pid, "role": "root", "seconds": round(root_seconds, 6)}]
        + [{"pid": pid, "role": roles[pid], "seconds": round(last[pid], 6)} for pid in sorted(last)],
    }
    return "".join(lines), record


def main():
    arguments = sys.argv[1:]
    interval, timeout = 0.05, None
    while arguments and arguments[0] != "--":
        if arguments[0] == "--interval" and len(arguments) > 1:
            interval = float(arguments[1])
            arguments = arguments[2:]
        elif arguments[0] == "--timeout" and len(arguments) > 1:
            timeout = float(arguments[1])
            arguments = arguments[2:]
        elif arguments[0] in ("-h", "--help"):
            print(__doc__)
            return 0
        else:
            print(f"cputime.py: unknown argument {arguments[0]!r} (see --help)",
                  file=sys.stderr)
            return 2
    if not arguments[1:]:
        print("usage: cputime.py [--interval S] [--timeout S] -- COMMAND [ARG...]", file=sys.stderr)
        return 2
    _, record = measure(arguments[1:], interval=interval, timeout=timeout)
    print(json.dumps(record, ensure_ascii=False), flush=True)
    return record["exitStatus"]


if __name__ == "__main__":
    sys.exit(main())
