#!/usr/bin/env python3
"""Runs the Celery 5 + Redis peer on the workloads of docs/BENCHMARKS.md (W1–W4).

usage: run.py W1|W2|W3|W4 ... [--scale F] [--window N] [--w1-budget S] [--w2-budget S] [--timeout S]
              [--durable]

It starts its own redis-server (127.0.0.1 only, a free port, no persistence: --save '' --appendonly
no; with --durable, --appendonly yes --appendfsync always instead, so that Redis writes every
command to its append-only file and fsyncs it before it answers, in a scratch directory) as broker
and result backend, then for each workload (and each W4 shape) a Celery worker,
`celery -A tasks worker --pool P --concurrency N` run from this folder (see tasks.py), waits until
the worker answers app.control.ping, runs the workload from this process with `task.delay(args)`
and `AsyncResult.get()`, and verifies every result. It prints one JSON line per workload, with the
field names of bench/python-seed/run.py ("impl": "celery"; "pool" and "concurrency" say how the
worker ran; "prefetch" is null: Celery reserves prefetch-multiplier × concurrency tasks, its
default multiplier 4 is kept; "durable" says whether Redis ran with --durable, "redisAppendfsync"
what Redis itself reports for appendfsync, and with --durable "aofBytes" the size of its
append-only files at the end of the workload):
  W1  echo throughput, 100,000 × scale tasks (1,000 untimed warm-ups first), threads pool of 4,
      up to --window (default 1,000) tasks in flight. Celery does ~1,000 tasks/s here, so the run
      stops submitting after --w1-budget seconds (default 150) and drains what is in flight:
      "tasks" is the number that ran, "requestedTasks" the number asked for, "capped" says whether
      the budget cut the run short. tasks/s is from the first submit to the last result.
  W2  latency, 10,000 × scale sequential echo round trips after 100 untimed warm-ups, threads pool
      of 4; capped the same way by --w2-budget (default 90 s).
  W3  2,000 × scale sleep {"ms": 10}, threads pool of 50.
  W4  400 × scale sha256 {"seed": "i", "iterations": 20000} as three parts: 1×1 (prefork 1),
      1×2 (threads 2), 2×1 (prefork 2); one line whose "parts" hold them.
Latencies run from delay() to the return of get(); results are collected oldest first.
The worker and redis-server are stopped in every case (finally; they also get SIGTERM if this
process dies), and the whole run gives up after --timeout seconds (default 800).
Exit status: 0 when every workload ran and every result was verified, 1 otherwise, 2 when Celery,
redis-py or redis-server is missing.
"""
import argparse
import collections
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from peerproc import GaveUp, die_with_parent, free_port, stop, tail  # noqa: E402
PAYLOAD = "abcdefgh" * 8  # 64 ASCII characters, as Conveyor's W1 and the Python seed's
PREFETCH_MULTIPLIER = 4  # Celery's default, left as it is


class RedisServer:
    """redis-server on 127.0.0.1 and a free port, in a scratch directory: without persistence, or
    with `durable`, with an append-only file fsynced on every write (appendfsync always)."""

    def __init__(self, timeout=15.0, durable=False):
        import redis  # redis-py, installed with Celery's redis extra or on its own

        self.child = None
        self.durable = durable
        self.directory = tempfile.mkdtemp(prefix="celery-bench-redis-")
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if durable else ["--appendonly", "no"]
        last_error = None
        for _ in range(5):  # another process may take the free port between probe and bind
            self.port = free_port()
            self.child = subprocess.Popen(
                ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--protected-mode", "yes",
                 "--save", "", *persistence, "--dir", self.directory, "--daemonize", "no",
                 "--loglevel", "warning", "--logfile", os.path.join(self.directory, "redis.log")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sys.stderr,
                start_new_session=True, preexec_fn=die_with_parent)
            client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1, socket_timeout=2)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and self.child.poll() is None:
                try:
                    if client.ping():
                        client.close()
                        return
                except redis.RedisError as error:
                    last_error = error
                time.sleep(0.05)
            client.close()
            stop(self.child, "redis-server")
            self.child = None
            tail(os.path.join(self.directory, "redis.log"), "redis-server's log")
        raise RuntimeError(f"redis-server did not start: {last_error}")

    def version(self):
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        try:
            return client.info("server").get("redis_version")
        except redis.RedisError:
            return None
        finally:
            client.close()

    def appendfsync(self):
        """What the server says its appendfsync is, or "off" without an append-only file."""
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)
        try:
            config = client.config_get("append*")
            return config.get("appendfsync") if config.get("appendonly") == "yes" else "off"
        except redis.RedisError:
            return None
        finally:
            client.close()

    def aof_bytes(self):
        """The size of the append-only file(s) in the scratch directory (Redis 7 keeps them in a
        folder of their own; older ones as one file)."""
        total = 0
        for folder, _, names in os.walk(self.directory):
            for name in names:
                if name.endswith(".aof") or ".aof." in name:
                    total += os.path.getsize(os.path.join(folder, name))
        return total

    def close(self):
        stop(self.child, "redis-server")
        self.child = None
        shutil.rmtree(self.directory, ignore_errors=True)


class Worker:
    """`celery -A tasks worker --pool POOL --concurrency N`, ready once it answers a ping."""

    serial = 0

    def __init__(self, app, port, pool, concurrency, log_directory, timeout=60.0):
        Worker.serial += 1
        self.hostname = f"bench{Worker.serial}-{os.getpid()}@localhost"
        # Its banner and warnings (e.g. about running as root) go to a log, shown when it fails.
        self.log_path = os.path.join(log_directory, f"worker{Worker.serial}.log")
        self.log = open(self.log_path, "wb")
        env = dict(os.environ, CELERY_BENCH_REDIS_PORT=str(port), PYTHONUNBUFFERED="1")
        env.pop("CELERY_BENCH_REDIS_URL", None)
        self.child = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "tasks", "worker", "--pool", pool,
             "--concurrency", str(concurrency), "--hostname", self.hostname, "--loglevel", "WARNING",
             "--without-gossip", "--without-mingle"],
            cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True, preexec_fn=die_with_parent)
        try:
            deadline = time.monotonic() + timeout
            while True:
                if self.child.poll() is not None:
                    raise RuntimeError(f"the Celery worker exited ({self.child.returncode}) before it was ready")
                if time.monotonic() >= deadline:
                    raise RuntimeError(f"the Celery worker did not answer a ping within {timeout:g} s")
                replies = app.control.ping(destination=[self.hostname], timeout=0.5)
                if any(self.hostname in reply for reply in replies or []):
                    return
        except BaseException:
            self.close(show_log=True)
            raise

    def close(self, show_log=False):
        stop(self.child, "the Celery worker")
        self.child = None
        self.log.close()
        if show_log:
            tail(self.log_path, f"the Celery worker's log ({self.hostname})")


class Report:
    def __init__(self, requested):
        self.requested = requested
        self.tasks = 0
        self.succeeded = 0
        self.wall_seconds = 0.0
        self.latencies = []  # microseconds
        self.first_error = None
        self.capped = False

    @property
    def verified(self):
        return self.tasks > 0 and self.succeeded == self.tasks

    def fail(self, message):
        if self.first_error is None:
            self.first_error = message

    def percentiles(self):  # nearest rank, as bench/python-seed/producer.py
        values = sorted(self.latencies)
        if not values:
            return {}

        def rank(p):
            index = max(1, min(len(values), -(-len(values) * p // 100)))
            return int(round(values[index - 1]))

        return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": int(round(values[-1]))}


def run(tasks, window, budget=None, get_timeout=60.0):
    """Runs `tasks`, a list of (celery task, args, check(result) -> bool), with up to `window` in
    flight, collecting results oldest first. Stops submitting once `budget` seconds have passed
    (then drains what is in flight)."""
    from celery.exceptions import TimeoutError as CeleryTimeout

    report = Report(len(tasks))
    pending = collections.deque()
    clock = time.perf_counter
    sent = 0
    start = clock()
    deadline = start + budget if budget else None
    while True:
        while sent < len(tasks) and len(pending) < window:
            if deadline is not None and clock() >= deadline:
                report.capped = True
                break
            task, args, check = tasks[sent]
            sent += 1
            pending.append((clock(), task.delay(args), check))
        if not pending:
            break
        sent_at, result, check = pending.popleft()
        try:
            value = result.get(timeout=get_timeout)
        except CeleryTimeout:
            report.fail(f"no result for {get_timeout:g} s; {len(pending) + 1} tasks still pending")
            break
        except Exception as error:  # the task raised: get() re-raises it here
            report.fail(f"{type(error).__name__}: {str(error)[:200]}")
            continue
        report.latencies.append((clock() - sent_at) * 1e6)
        if check(value):
            report.succeeded += 1
        else:
            report.fail(f"wrong result: {json.dumps(value)[:200]}")
    report.wall_seconds = clock() - start
    report.tasks = sent
    return report


def result_line(workload, shape, report, processes, threads, pool, concurrency):
    line = {
        "impl": "celery", "workload": workload, "shape": shape, "processes": processes, "threads": threads,
        "prefetch": None, "pool": pool, "concurrency": concurrency, "prefetchMultiplier": PREFETCH_MULTIPLIER,
        "tasks": report.tasks, "requestedTasks": report.requested, "capped": report.capped,
        "verified": report.verified, "wallSeconds": round(report.wall_seconds, 6),
        "tasksPerSecond": round(report.tasks / report.wall_seconds, 1) if report.wall_seconds > 0 else 0,
        "latencyMicroseconds": report.percentiles(),
    }
    if report.first_error:
        line["firstError"] = report.first_error
    return line


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workloads", nargs="+", type=str.upper, choices=["W1", "W2", "W3", "W4"])
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every task count by this")
    parser.add_argument("--window", type=int, default=1000, help="tasks in flight (W1, W3, W4)")
    parser.add_argument("--w1-budget", type=float, default=150.0,
                        help="seconds after which W1 stops submitting (default 150)")
    parser.add_argument("--w2-budget", type=float, default=90.0,
                        help="seconds after which W2 stops submitting (default 90)")
    parser.add_argument("--timeout", type=float, default=800, help="give up after this many seconds in all")
    parser.add_argument("--durable", action="store_true",
                        help="run redis-server with --appendonly yes --appendfsync always")
    options = parser.parse_args()
    if options.scale <= 0:
        parser.error("--scale must be positive")
    if options.window < 1:
        parser.error("--window must be positive")

    missing = [name for name in ("celery", "redis") if importlib.util.find_spec(name) is None]
    if shutil.which("redis-server") is None:
        missing.append("redis-server")
    if missing:
        print(f"run.py: missing {', '.join(missing)} (python3 -m pip install celery redis; "
              "apt-get install redis-server)", file=sys.stderr)
        return 2

    def count(base):
        return max(1, int(base * options.scale))

    def on_alarm(*_):
        raise GaveUp(f"gave up after {options.timeout:g} s (--timeout)")

    def on_term(signum, _):
        raise GaveUp(f"stopped by signal {signum}")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(max(1, int(options.timeout)))

    all_verified = True
    server = None
    try:
        server = RedisServer(durable=options.durable)
        os.environ["CELERY_BENCH_REDIS_PORT"] = str(server.port)
        os.environ.pop("CELERY_BENCH_REDIS_URL", None)
        sys.path.insert(0, HERE)
        import tasks as bench  # noqa: E402  (reads the port from the environment)

        app = bench.app
        versions = {"celeryVersion": importlib.import_module("celery").__version__,
                    "redisVersion": server.version(), "durable": options.durable,
                    "redisAppendfsync": server.appendfsync()}

        def measure(pool, concurrency, body):
            worker = Worker(app, server.port, pool, concurrency, server.directory)
            report = None
            try:
                report = body()
                return report
            finally:
                worker.close(show_log=report is None or not report.verified)

        def echo(index):
            args = {"id": index, "data": PAYLOAD}
            return (bench.echo, args, lambda result: result == args)

        for workload in options.workloads:
            try:
                if options.durable and versions["redisAppendfsync"] != "always":
                    raise RuntimeError(f"redis-server runs with appendfsync {versions['redisAppendfsync']}, not always")
                if workload == "W1":
                    warmups = [echo(i) for i in range(1000)]
                    work = [echo(i) for i in range(count(100_000))]

                    def w1():
                        run(warmups, options.window)
                        return run(work, options.window, options.w1_budget)

                    shape = f"1×4 threads, window {options.window}" + (
                        ", Redis appendfsync always" if options.durable else "")
                    line = result_line("W1", shape, measure("threads", 4, w1), 1, 4, "threads", 4)
                elif workload == "W2":
                    warmups = [echo(i) for i in range(100)]
                    work = [echo(i) for i in range(count(10_000))]

                    def w2():
                        run(warmups, 1)
                        return run(work, 1, options.w2_budget)

                    line = result_line("W2", "1×4 threads, one in flight", measure("threads", 4, w2),
                                       1, 4, "threads", 4)
                elif workload == "W3":
                    work = [(bench.sleep, {"ms": 10}, lambda result: result == {"slept_ms": 10})
                            for _ in range(count(2_000))]
                    line = result_line("W3", "1×50 threads", measure("threads", 50, lambda: run(work, options.window)),
                                       1, 50, "threads", 50)
                else:
                    n = count(400)
                    work = []
                    for i in range(n):
                        expected = {"digest": bench.sha256_digest(i, 20_000)}
                        work.append((bench.sha256, {"seed": str(i), "iterations": 20_000},
                                     lambda result, expected=expected: result == expected))
                    parts = []
                    for shape, pool, concurrency, processes, threads in (
                            ("1×1", "prefork", 1, 1, 1), ("1×2", "threads", 2, 1, 2), ("2×1", "prefork", 2, 2, 1)):
                        report = measure(pool, concurrency, lambda: run(work, options.window))
                        parts.append(result_line("W4", shape, report, processes, threads, pool, concurrency))
                    line = {
                        "impl": "celery", "workload": "W4",
                        "shape": ", ".join(f"{part['shape']} ({part['pool']} {part['concurrency']})" for part in parts),
                        "tasks": n, "verified": all(part["verified"] for part in parts),
                        "wallSeconds": round(sum(part["wallSeconds"] for part in parts), 6), "parts": parts,
                    }
            except Exception as error:
                line = {"impl": "celery", "workload": workload, "verified": False,
                        "firstError": f"{type(error).__name__}: {error}"}
            line.update(versions)
            if options.durable:
                line["aofBytes"] = server.aof_bytes()
            all_verified = all_verified and line["verified"]
            print(json.dumps(line, ensure_ascii=False), flush=True)
    except GaveUp as error:
        print(f"run.py: {error}", file=sys.stderr)
        all_verified = False
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the cleanup finish
        if server is not None:
            server.close()
    return 0 if all_verified else 1


if __name__ == "__main__":
    sys.exit(main())
