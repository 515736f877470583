"""The client against a real broker and consumer: ``conveyor broker --in-memory`` on ports it picks
(tcp://127.0.0.1:*, read back from what it prints) and ``conveyor consumer`` with 2 threads, started
once for the class. Runs only when CONVEYOR_BIN names the ``conveyor`` executable."""
import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
import unittest
import uuid

import _support

from conveyor_client import CRITICAL, Client, ConveyorError, TaskOptions
from conveyor_client import protocol
from conveyor_client.checks import iterated_sha256
from conveyor_client.client import zmq

CONVEYOR_BIN = os.environ.get("CONVEYOR_BIN")
SKIP = ("set CONVEYOR_BIN to a conveyor executable (e.g. CONVEYOR_BIN=.build/debug/conveyor after swift build) "
        "to run the end-to-end tests against a real broker and consumer")


def die_with_parent():
    """preexec_fn: the child gets SIGTERM when this process dies, however it dies (Linux), so that a
    test run that is killed leaves no broker or consumer behind."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Peer:
    """A child process whose output (standard output and error together) is read by a thread."""

    def __init__(self, name, arguments):
        self.name = name
        self.lines = queue.Queue()
        self.transcript = []
        self.process = subprocess.Popen(arguments, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, universal_newlines=True,
                                        preexec_fn=die_with_parent if os.name == "posix" else None)
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.process.stdout:
            self.transcript.append(line.rstrip("\n"))
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, prefix, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            if line.startswith(prefix):
                return line[len(prefix):].strip()
        raise AssertionError(f"{self.name} did not print '{prefix}…' within {timeout} s "
                             f"(exit status {self.process.poll()}); output:\n" + "\n".join(self.transcript))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process.stdout.close()


@unittest.skipUnless(CONVEYOR_BIN, SKIP)
@unittest.skipIf(zmq is None, "pyzmq is not installed (pip install pyzmq)")
class EndToEndTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.peers = []
        if not (os.path.isfile(CONVEYOR_BIN) and os.access(CONVEYOR_BIN, os.X_OK)):
            raise AssertionError(f"CONVEYOR_BIN={CONVEYOR_BIN!r} is not an executable file")
        try:
            broker = cls.start("broker", ["broker", "--in-memory", "--frontend", "tcp://127.0.0.1:*",
                                          "--backend", "tcp://127.0.0.1:*"])
            cls.frontend = broker.wait_for("frontend ", 30)
            backend = broker.wait_for("backend ", 5)
            cls.start("consumer", ["consumer", "--backend", backend, "--threads", "2"])
            with Client(cls.frontend, log=lambda text: None) as client:
                deadline = time.monotonic() + 30
                while not client.stats(timeout=10)["consumers"]:
                    if time.monotonic() > deadline:
                        raise AssertionError("the broker saw no consumer within 30 s; consumer output:\n"
                                             + "\n".join(cls.peers[1].transcript))
                    time.sleep(0.1)
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def start(cls, name, arguments):
        peer = Peer(name, [CONVEYOR_BIN] + arguments)
        cls.peers.append(peer)
        return peer

    @classmethod
    def tearDownClass(cls):
        for peer in reversed(cls.peers):
            peer.stop()

    def setUp(self):
        self.run_id = uuid.uuid4().hex[:8]
        self.logs = []
        self.client = Client(self.frontend, log=self.logs.append)
        self.addCleanup(self.client.close)

    def id_for(self, suffix):
        return f"e2e-{self.run_id}-{suffix}"

    def test_echo_tasks_come_back_with_their_args(self):
        payloads = [{"i": i, "text": f"hello {i}", "unicode": "h\u00e9llo \u2713", "list": [i, None, True],
                     "nested": {"x": i / 4}} for i in range(60)]
        tasks = [("echo", p, TaskOptions(priority=i % 3, timeout_ms=60_000), self.id_for(f"echo-{i}"))
                 for i, p in enumerate(payloads)]
        ids = self.client.submit_many(tasks)
        self.assertEqual(self.client.wait_accepted(ids, timeout=30), {i: None for i in ids})
        results = self.client.results(ids, timeout=60)
        self.assertEqual(sorted(results), sorted(ids), "results missing")
        for task_id, payload in zip(ids, payloads):
            result = results[task_id]
            self.assertEqual((result.status, result.value), ("ok", payload), task_id)
            self.assertEqual(result.info.get("attempts"), 1, result.info)
        self.assertEqual(self.client.pending_ids(), [])
        report = self.client.status(ids[0], timeout=10)
        self.assertEqual((report.state, report.result.value), ("done", payloads[0]))

    def test_sha256_digests_match_python(self):
        tasks = [("sha256", {"seed": f"seed-{j}", "iterations": 100 * j}, None, self.id_for(f"sha-{j}")) for j in range(4)]
        results = self.client.results(self.client.submit_many(tasks), timeout=60)
        for name, args, _, task_id in tasks:
            self.assertEqual(results[task_id].value, {"digest": iterated_sha256(args["seed"], args["iterations"])})

    def test_a_failing_handler_is_an_error_result(self):
        result = self.client.result(self.client.submit("fail", {"message": "boom"}, id=self.id_for("fail")), timeout=30)
        self.assertEqual((result.ok, result.status, result.error, result.kind), (False, "error", "boom", "handler_error"))

    def test_a_traceparent_reaches_the_handler(self):
        traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        options = TaskOptions(traceparent=traceparent, tracestate="rojo=1")
        result = self.client.result(self.client.submit("trace", {}, id=self.id_for("trace"), options=options), timeout=30)
        self.assertEqual(result.value, {"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "traceparent": traceparent,
                                        "tracestate": "rojo=1"})

    def test_a_name_nobody_serves_gets_a_notice_and_waits(self):
        name = f"no-such-task-{self.run_id}"
        task_id = self.client.submit(name, {"x": 1}, id=self.id_for("lonely"), wait=10)
        self.assertEqual(self.client.status(task_id, timeout=10).state, "queued")
        notices = [n for n in self.client.notices if n.get("id") == task_id]
        self.assertEqual(len(notices), 1, f"one NOTICE for {task_id}; got {self.client.notices}")
        self.assertEqual(notices[0]["name"], name)
        self.assertIn(f"no connected consumer serves '{name}'", notices[0]["notice"])
        self.assertIn("echo", notices[0]["notice"], "the notice names what is served")
        self.assertEqual(self.client.cancel(task_id, timeout=10), "cancelled")
        cancelled = self.client.result(task_id, timeout=10)
        self.assertEqual((cancelled.status, cancelled.kind), ("cancelled", "cancelled"))

    def test_require_consumer_rejects_a_name_nobody_serves(self):
        name = f"no-such-task-{self.run_id}"
        required = TaskOptions(extra=((protocol.OPT_REQUIRE_CONSUMER | CRITICAL, b""),))
        with self.assertRaisesRegex(ConveyorError, f"no connected consumer serves '{name}' \\(require_consumer\\)"):
            self.client.submit(name, {}, id=self.id_for("required"), options=required, wait=10)
        served = self.client.submit("echo", {"ok": True}, id=self.id_for("required-echo"), options=required, wait=10)
        self.assertEqual(self.client.result(served, timeout=30).value, {"ok": True})

    def test_an_id_reused_for_other_args_is_rejected(self):
        task_id = self.client.submit("echo", {"a": 1}, id=self.id_for("reused"))
        self.assertEqual(self.client.result(task_id, timeout=30).value, {"a": 1})
        self.client.submit_many([("echo", {"a": 1}, None, task_id)])
        self.assertEqual(self.client.result(task_id, timeout=30).value, {"a": 1}, "the same task: its kept result")
        self.client.submit_many([("echo", {"a": 2}, None, task_id)])
        rejected = self.client.result(task_id, timeout=30)
        self.assertEqual(rejected.status, "rejected")
        self.assertIn("other args", rejected.error)

    def test_hello_stats_and_ping(self):
        hello = self.client.hello(timeout=10)
        self.assertEqual(hello["role"], "broker")
        self.assertIn(3, hello["versions"])
        self.assertIn(2, hello["versions"])
        stats = self.client.stats(timeout=10)
        self.assertEqual(len(stats["consumers"]), 1, stats["consumers"])
        self.assertIn("echo", stats["consumers"][0]["tasks"])
        self.assertGreaterEqual(self.client.ping(timeout=10), 0)
        self.assertEqual(self.client.errors, [])

    def test_pause_and_resume_a_name(self):
        name = "echo"
        paused = self.client.pause(name, timeout=10)
        self.assertEqual((paused["action"], paused["name"], paused["paused"], paused["changed"]), ("pause", name, True, True), paused)
        try:
            task_id = self.client.submit(name, {"paused": 1}, id=self.id_for("paused"))
            time.sleep(1.0)
            self.assertEqual(self.client.status(task_id, timeout=10).state, "queued", "a paused name's task waits")
            self.assertIn(name, self.client.stats(timeout=10).get("paused", []))
        finally:
            resumed = self.client.resume(name, timeout=10)
        self.assertEqual((resumed["paused"], resumed["changed"]), (False, True), resumed)
        self.assertEqual(self.client.result(task_id, timeout=30).value, {"paused": 1}, "it runs once resumed")
        self.assertFalse(self.client.resume(name, timeout=10)["changed"], "resuming again changes nothing")

    def test_limits_and_schedules(self):
        limited = self.client.limit("sha256", rate=20, burst=5, concurrency=2, weight=3, timeout=10)
        try:
            self.assertTrue(limited["changed"], limited)
            self.assertEqual(limited["limit"]["limit"], {"rate": 20, "burst": 5, "concurrency": 2, "weight": 3})
            listed = {entry["name"]: entry for entry in self.client.stats(timeout=10).get("limits", [])}
            self.assertEqual(listed["sha256"]["limit"]["concurrency"], 2, listed)
            self.assertIn("rate must be", self.client.limit("sha256", rate=0, timeout=10).get("error", ""))
        finally:
            cleared = self.client.clear_limit("sha256", timeout=10)
        self.assertIsNone(cleared["limit"], cleared)

        schedule_id = self.id_for("beat")[:60]
        added = self.client.schedule_add(schedule_id, "echo", {"beat": True}, every=1, timeout=10)
        self.assertEqual(added.get("action"), "add", added)
        try:
            entry = added["schedules"][0]
            self.assertEqual((entry["id"], entry["every"], entry["args"]), (schedule_id, 1, {"beat": True}), entry)
            tick_id = f"sched:{schedule_id}:{entry['next_tick']}"
            # A tick's task has no producer: nobody is sent its result; STATUS shows it.
            deadline = time.monotonic() + 30
            report = self.client.status(tick_id, timeout=10)
            while report.state != "done" and time.monotonic() < deadline:
                time.sleep(0.1)
                report = self.client.status(tick_id, timeout=10)
            self.assertEqual(report.state, "done", report)
            self.assertEqual(report.result.value, {"beat": True}, "the first tick ran")
            self.assertIn(schedule_id, [s["id"] for s in self.client.schedule_list(timeout=10)])
            bad = self.client.schedule_add("bad", "echo", cron="61 * * * *", timeout=10)
            self.assertIn("minute field: 61 is out of range", bad.get("error", ""), bad)
        finally:
            removed = self.client.schedule_remove(schedule_id, timeout=10)
        self.assertEqual(removed["schedules"][0]["id"], schedule_id, removed)
        self.assertNotIn(schedule_id, [s["id"] for s in self.client.schedule_list(timeout=10)])

    def test_a_version_2_client_on_the_same_broker(self):
        with Client(self.frontend, protocol=2, log=self.logs.append) as old:
            task_id = old.submit("echo", {"v": 2}, id=self.id_for("v2"), options=TaskOptions(timeout_ms=20_000))
            self.assertEqual(old.result(task_id, timeout=30).value, {"v": 2})
            self.assertEqual(old.status(task_id, timeout=10).state, "done")
            self.assertEqual((old.version, old.errors), (2, []))

    def test_the_command_line_checks_the_broker(self):
        run = _support.run_python(["-m", "conveyor_client", "--broker", self.frontend, "--count", "20",
                                   "--sha256", "2", "--timeout", "60", "--quiet"],
                                  env=_support.source_environment(), timeout=120)
        self.assertEqual(run.returncode, 0, run.stdout)
        self.assertIn("summary: 22/22 tasks succeeded, 0 wrong or failed, 0 missing", run.stdout)
        self.assertIn("ALL OK", run.stdout)


if __name__ == "__main__":
    unittest.main()
