"""The seed design's producer: a DEALER to the broker's frontend.

Sends [task id][name][json.dumps(args)], keeps up to `window` tasks in flight, and checks every
result. Each task's latency runs from its send to its result; a run's wall time from the first
send to the last result.
"""
import json
import time

import zmq


class Report:
    def __init__(self):
        self.tasks = 0
        self.succeeded = 0
        self.wall_seconds = 0.0
        self.latencies = []  # microseconds
        self.first_error = None

    @property
    def verified(self):
        return self.tasks > 0 and self.succeeded == self.tasks

    def fail(self, message):
        if self.first_error is None:
            self.first_error = message

    def percentiles(self):
        values = sorted(self.latencies)
        if not values:
            return {}

        def rank(p):  # nearest rank
            index = max(1, min(len(values), -(-len(values) * p // 100)))
            return int(round(values[index - 1]))

        return {"p50": rank(50), "p90": rank(90), "p99": rank(99), "max": int(round(values[-1]))}


class Producer:
    def __init__(self, endpoint, idle_timeout=60.0):
        self.context = zmq.Context()
        self.dealer = self.context.socket(zmq.DEALER)
        self.dealer.setsockopt(zmq.SNDHWM, 0)
        self.dealer.setsockopt(zmq.RCVHWM, 0)
        self.dealer.setsockopt(zmq.LINGER, 0)
        self.dealer.connect(endpoint)
        self.idle_timeout = idle_timeout
        self.next_id = 0

    def close(self):
        self.context.destroy(linger=0)

    def run(self, tasks, window):
        """Runs `tasks`, a list of (name, args, check(result) -> bool), `window` at a time."""
        report = Report()
        report.tasks = len(tasks)
        pending = {}
        dealer = self.dealer
        clock = time.perf_counter
        sent = 0
        start = clock()
        while sent < len(tasks) or pending:
            while sent < len(tasks) and len(pending) < window:
                name, args, check = tasks[sent]
                sent += 1
                task_id = str(self.next_id).encode()
                self.next_id += 1
                pending[task_id] = (clock(), check)
                dealer.send_multipart([task_id, name.encode(), json.dumps(args).encode()])
            if not dealer.poll(self.idle_timeout * 1000, zmq.POLLIN):
                report.fail(f"no result for {self.idle_timeout} s; {len(pending)} tasks still pending")
                break
            while True:
                try:
                    task_id, status, body = dealer.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                now = clock()
                entry = pending.pop(task_id, None)
                if entry is None:
                    report.fail(f"result for unknown task {task_id!r}")
                    continue
                sent_at, check = entry
                report.latencies.append((now - sent_at) * 1e6)
                if status != b"ok":
                    report.fail(f"{status.decode()}: {body.decode(errors='replace')[:200]}")
                elif not check(json.loads(body)):
                    report.fail(f"wrong result: {body.decode(errors='replace')[:200]}")
                else:
                    report.succeeded += 1
        report.wall_seconds = clock() - start
        return report

    def sequential(self, tasks):
        """Runs `tasks` one at a time (one in flight)."""
        return self.run(tasks, 1)
