#!/usr/bin/env python3
"""Runs the seed design (broker.py, consumer.py, producer.py) on the workloads of docs/BENCHMARKS.md.

usage: run.py W1|W2|W3|W4 ... [--scale F] [--processes P --threads T] [--window N] [--prefetch K]

For each workload it starts a broker and the consumer process(es) as subprocesses (the broker binds
free ports), waits until every consumer's READY has reached the broker, runs the producer in this
process and prints one JSON line (field names as in `conveyor bench --json`, plus "impl"):
  W1  echo throughput, 100,000 × scale tasks, 1 × 4 (window 1,000; 1,000 untimed warm-up tasks)
  W2  latency, 10,000 × scale sequential echo round trips after 100 untimed warm-ups, 1 × 4
  W3  2,000 × scale sleep {"ms": 10}, 1 × 50
  W4  400 × scale sha256 {"seed": "i", "iterations": 20000} as 1×1, 1×2 and 2×1: one line whose
      "parts" hold the three shapes
--processes/--threads replace the shape (for W4: run only that shape). --prefetch K gives each
consumer K credits beyond its threads (default 0: a credit per thread, as the Guide's LRU broker;
compare with `conveyor bench --prefetch K`). Exit status 1 if any result was wrong or missing. Children are killed when it ends; they also stop on their own.
Every line also has "cpu": the CPU time (user + system) of the broker, each consumer process and
this process (the producer) over the timed window, per task, with the fields of `conveyor bench
--json` (microsecondsPerTask, byRole, seconds, cores).
"""
import argparse
import json
import os
import resource
import select
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from producer import Producer  # noqa: E402
from tasks import sha256_digest  # noqa: E402

PAYLOAD = "abcdefgh" * 8  # 64 ASCII characters, as Conveyor's W1


class Cluster:
    """A broker and `processes` consumers with `threads` threads each."""

    def __init__(self, processes, threads, lifetime, prefetch=0):
        self.children = []
        self.buffer = b""
        try:
            self.broker = self.spawn(["broker.py", "--timeout", str(lifetime)], stdout=subprocess.PIPE)
            endpoints = {}
            while len(endpoints) < 2:
                key, value = self.broker_line(10).split(" ", 1)
                endpoints[key] = value
            self.frontend = endpoints["frontend"]
            for _ in range(processes):
                self.spawn(["consumer.py", "--connect", endpoints["backend"], "--threads", str(threads),
                            "--prefetch", str(prefetch), "--timeout", str(lifetime)], stdout=sys.stderr)
            workers = set()
            while len(workers) < processes:
                kind, worker = self.broker_line(30).split(" ", 1)
                if kind == "worker":
                    workers.add(worker)
        except BaseException:
            self.close()
            raise

    def spawn(self, arguments, stdout):
        child = subprocess.Popen([sys.executable, os.path.join(HERE, arguments[0])] + arguments[1:],
                                 stdin=subprocess.DEVNULL, stdout=stdout, cwd=HERE)
        self.children.append(child)
        return child

    def broker_line(self, timeout):
        deadline = time.monotonic() + timeout
        fd = self.broker.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise RuntimeError("the broker did not report in time")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"the broker exited ({self.broker.poll()})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode().strip()

    def close(self):
        for child in self.children:
            if child.poll() is None:
                child.terminate()
        for child in self.children:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if getattr(self, "broker", None) is not None and self.broker.stdout:
            self.broker.stdout.close()


class CPUWindow:
    """CPU seconds (user + system) of this process and the cluster's children, sampled when the timed
    window opens and when it closes: getrusage for this process, each child's CPU clock (Linux)."""

    def __init__(self, cluster):
        self.members = [("producer", None), ("broker", cluster.broker.pid)]
        self.members += [("consumer", child.pid) for child in cluster.children if child is not cluster.broker]
        self.before = self.sample()

    def sample(self):
        times = {}
        for role, pid in self.members:
            if pid is None:
                usage = resource.getrusage(resource.RUSAGE_SELF)
                times[role, pid] = usage.ru_utime + usage.ru_stime
            else:
                try:
                    times[role, pid] = time.clock_gettime(((~pid) << 3) | 2)  # the process's CPU clock
                except OSError:
                    pass
        return times

    def report(self, tasks, wall_seconds):
        after = self.sample()
        seconds = {key: after[key] - self.before[key] for key in after if key in self.before}
        total = sum(seconds.values())
        by_role = {}
        for (role, _), value in seconds.items():
            by_role[role] = by_role.get(role, 0.0) + value * 1e6 / max(1, tasks)
        return {"tasks": tasks, "seconds": round(total, 6), "microsecondsPerTask": round(total * 1e6 / max(1, tasks), 3),
                "byRole": {role: round(value, 3) for role, value in by_role.items()},
                "cores": round(total / wall_seconds, 3) if wall_seconds > 0 else 0}


def timed(cluster, run):
    """Runs `run()` (which returns a Report) and attaches the CPU time of its window as report.cpu."""
    window = CPUWindow(cluster)
    report = run()
    report.cpu = window.report(report.tasks, report.wall_seconds)
    return report


def echo_task(index):
    args = {"id": index, "data": PAYLOAD}
    return ("echo", args, lambda result: result == args)


def sleep_task(ms):
    return ("sleep", {"ms": ms}, lambda result: result == {"slept_ms": ms})


def sha256_task(seed, iterations, expected):
    return ("sha256", {"seed": str(seed), "iterations": iterations}, lambda result: result == {"digest": expected})


def result_line(workload, shape, report, processes, threads, prefetch):
    line = {
        "impl": "python-seed", "workload": workload, "shape": shape, "processes": processes, "threads": threads,
        "prefetch": prefetch,
        "tasks": report.tasks, "verified": report.verified, "wallSeconds": round(report.wall_seconds, 6),
        "tasksPerSecond": round(report.tasks / report.wall_seconds, 1) if report.wall_seconds > 0 else 0,
        "latencyMicroseconds": report.percentiles(),
    }
    if report.first_error:
        line["firstError"] = report.first_error
    if getattr(report, "cpu", None) is not None:
        line["cpu"] = report.cpu
    return line


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="+", type=str.upper, choices=["W1", "W2", "W3", "W4"])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every task count by this")
    parser.add_argument("--processes", type=int, help="consumer processes (replaces the workload's shape)")
    parser.add_argument("--threads", type=int, help="threads per consumer process (replaces the workload's shape)")
    parser.add_argument("--window", type=int, default=1000, help="tasks in flight (W1, W3, W4)")
    parser.add_argument("--prefetch", type=int, default=0,
                        help="consumer credits beyond its threads (0: one credit per thread, the Guide's LRU broker)")
    parser.add_argument("--timeout", type=float, default=1800, help="give up after this many seconds in all")
    options = parser.parse_args()
    if options.scale <= 0:
        parser.error("--scale must be positive")

    def count(base):
        return max(1, int(base * options.scale))

    def shapes(default):
        if options.processes is None and options.threads is None:
            return default
        return [(options.processes or 1, options.threads or 4)]

    def on_alarm(*_):
        raise TimeoutError(f"run.py: gave up after {options.timeout} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(max(1, int(options.timeout)))
    lifetime = int(options.timeout) + 60
    all_verified = True

    def measure(processes, threads, body):
        cluster = Cluster(processes, threads, lifetime, options.prefetch)
        try:
            producer = Producer(cluster.frontend)
            try:
                return body(producer, cluster)
            finally:
                producer.close()
        finally:
            cluster.close()

    for workload in options.workloads:
        if workload == "W1":
            (p, t), = shapes([(1, 4)])[:1]
            tasks = [echo_task(i) for i in range(count(100_000))]

            def w1(producer, cluster):
                producer.run([echo_task(i) for i in range(1000)], options.window)
                return timed(cluster, lambda: producer.run(tasks, options.window))

            line = result_line("W1", f"{p}×{t}, window {options.window}, prefetch {options.prefetch}",
                               measure(p, t, w1), p, t, options.prefetch)
        elif workload == "W2":
            (p, t), = shapes([(1, 4)])[:1]
            tasks = [echo_task(i) for i in range(count(10_000))]

            def w2(producer, cluster):
                producer.sequential([echo_task(i) for i in range(100)])
                return timed(cluster, lambda: producer.sequential(tasks))

            line = result_line("W2", f"{p}×{t}, one in flight", measure(p, t, w2), p, t, options.prefetch)
        elif workload == "W3":
            (p, t), = shapes([(1, 50)])[:1]
            tasks = [sleep_task(10) for _ in range(count(2_000))]
            line = result_line("W3", f"{p}×{t}", measure(p, t, lambda producer, cluster: timed(cluster, lambda: producer.run(tasks, options.window))),
                               p, t, options.prefetch)
        else:
            n = count(400)
            tasks = [sha256_task(i, 20_000, sha256_digest(i, 20_000)) for i in range(n)]
            parts = []
            for p, t in shapes([(1, 1), (1, 2), (2, 1)]):
                report = measure(p, t, lambda producer, cluster: timed(cluster, lambda: producer.run(tasks, options.window)))
                parts.append(result_line("W4", f"{p}×{t}", report, p, t, options.prefetch))
            line = {
                "impl": "python-seed", "workload": "W4", "shape": ", ".join(part["shape"] for part in parts),
                "tasks": n, "verified": all(part["verified"] for part in parts),
                "wallSeconds": round(sum(part["wallSeconds"] for part in parts), 6), "parts": parts,
            }
        all_verified = all_verified and line["verified"]
        print(json.dumps(line, ensure_ascii=False), flush=True)
    signal.alarm(0)
    return 0 if all_verified else 1


if __name__ == "__main__":
    sys.exit(main())
