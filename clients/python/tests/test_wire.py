"""The Client against a stand-in broker (a pyzmq ROUTER in a thread that answers as a script says):
the exact frames it sends, how it reads what comes back, batching, the fall back to version 2, NOTICE,
and resubmission after silence. Needs pyzmq, not the conveyor binary."""
import json
import threading
import time
import unittest

import _support  # noqa: F401  (puts the source tree on sys.path)
from test_protocol import ACCEPTED_FRAME, RESULT_FRAME, SUBMIT_FRAME

from conveyor_client import TAG, TAG_V2, Client, ConveyorError, TaskOptions, pack_fields, unpack_fields
from conveyor_client import protocol
from conveyor_client.client import SOFTWARE, zmq
from conveyor_client.protocol import hello_body

IGNORED = {protocol.READ, protocol.HEARTBEAT}   # what the client sends on its own; the script may answer it


class FakeBroker:
    """A ROUTER on a free port. Every message but READ and HEARTBEAT is recorded as
    (routing id, tag, command, body frames); ``answer(routing_id, tag, command, body)`` returns the
    messages to send back (each a list of frames, the routing id put in front)."""

    def __init__(self, answer):
        self.answer = answer
        self.received = []
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.endpoint = f"tcp://127.0.0.1:{self.socket.bind_to_random_port('tcp://127.0.0.1')}"
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stopping.is_set():
            if not self.socket.poll(20):
                continue
            frames = self.socket.recv_multipart()
            routing_id, tag, command, body = frames[0], frames[1], frames[2][0], frames[3:]
            if command not in IGNORED:
                self.received.append((routing_id, tag, command, body))
            for reply in self.answer(routing_id, tag, command, body) or []:
                self.socket.send_multipart([routing_id] + reply)

    def commands(self, command):
        return [message for message in list(self.received) if message[2] == command]

    def close(self):
        self.stopping.set()
        self.thread.join(5)
        self.socket.close(0)
        self.context.term()


def echo_broker(routing_id, tag, command, body):
    """Accepts every task and answers each with an ok RESULT whose body is its args."""
    if command == protocol.SUBMIT:
        fields = unpack_fields(body[0])
        groups = [fields[i:i + 4] for i in range(0, len(fields), 4)]
        return [[tag, bytes([protocol.ACCEPTED]), pack_fields([g[0] for g in groups])],
                [tag, bytes([protocol.RESULT]), pack_fields([f for g in groups for f in (g[0], b"ok", g[3], b"{}")])]]
    if command == protocol.HEARTBEAT:
        return [[tag, bytes([protocol.HEARTBEAT])]]
    return []


@unittest.skipIf(zmq is None, "pyzmq is not installed (pip install pyzmq); the client's socket tests need it")
class ClientOnTheWireTests(unittest.TestCase):
    def start(self, answer, **client_options):
        self.broker = FakeBroker(answer)
        self.addCleanup(self.broker.close)
        self.logs = []
        client = Client(self.broker.endpoint, context=self.broker.context, log=self.logs.append, **client_options)
        self.addCleanup(client.close)
        return client

    def test_a_submit_is_the_worked_example_and_its_replies_are_read(self):
        def answer(routing_id, tag, command, body):
            if command == protocol.SUBMIT:
                return [[TAG, b"\x11", ACCEPTED_FRAME], [TAG, b"\x13", RESULT_FRAME]]
        client = self.start(answer, routing_id=b"py-1")
        task_id = client.submit("echo", {"n": 1}, id="job-1", options=TaskOptions(timeout_ms=5000))
        self.assertEqual(task_id, "job-1")
        result = client.result("job-1", timeout=5)
        self.assertEqual(self.broker.commands(protocol.SUBMIT), [(b"py-1", TAG, protocol.SUBMIT, [SUBMIT_FRAME])])
        self.assertEqual((result.status, result.value, result.info["pid"]), ("ok", {"n": 1}, 4242))
        self.assertEqual(client.pending_ids(), [])

    def test_delay_and_unique_key_are_sent_and_a_held_key_answers_with_the_held_task(self):
        def answer(routing_id, tag, command, body):
            if command != protocol.SUBMIT:
                return []
            fields = unpack_fields(body[0])
            if TaskOptions.decode(fields[2]).unique_key is None:
                return [[tag, b"\x11", pack_fields([fields[0]])]]
            # The key is held by "held-1": ACCEPTED and RESULT name the submitted id and the held one.
            pair = fields[0] + b" held-1"
            return [[tag, b"\x11", pack_fields([pair])], [tag, b"\x13", pack_fields([pair, b"ok", b'{"n":7}', b"{}"])]]
        client = self.start(answer)
        before = time.time()
        task_id = client.submit("echo", {}, id="later", delay=30, wait=5)
        self.assertEqual(task_id, "later")
        sent = TaskOptions.decode(unpack_fields(self.broker.commands(protocol.SUBMIT)[0][3][0])[2])
        self.assertTrue(int(before * 1000) + 30_000 - 1 <= sent.not_before <= time.time() * 1000 + 30_000, sent)
        self.assertIsNone(client.existing_id("later"))
        task_id = client.submit("report", {}, id="second", unique_key="daily", unique_ttl=60, wait=5)
        sent = TaskOptions.decode(unpack_fields(self.broker.commands(protocol.SUBMIT)[1][3][0])[2])
        self.assertEqual((sent.unique_key, sent.unique_ttl_ms), ("daily", 60_000))
        result = client.result(task_id, timeout=5)
        self.assertEqual((client.existing_id("second"), result.id, result.value), ("held-1", "held-1", {"n": 7}))
        with self.assertRaisesRegex(ValueError, "give one of them"):
            client.submit("echo", {}, delay=1, not_before=time.time())

    def test_many_tasks_are_packed_batch_by_batch_and_a_rejection_is_a_result(self):
        def answer(routing_id, tag, command, body):
            if command != protocol.SUBMIT:
                return []
            fields = unpack_fields(body[0])
            ids = fields[0::4]
            replies = [[tag, b"\x11", pack_fields([i for i in ids if i != b"t-4"])],
                       [tag, b"\x13", pack_fields([f for i, args in zip(ids, fields[3::4]) if i != b"t-4"
                                                  for f in (i, b"ok", args, b'{"attempts":1}')])]]
            if b"t-4" in ids:
                replies.append([tag, b"\x12", pack_fields([b"t-4", b"queue is full (max_queued 1000)"])])
            return replies
        client = self.start(answer, batch=3)
        ids = client.submit_many([("echo", {"i": i}, None, f"t-{i}") for i in range(7)])
        results = client.results(ids, timeout=5)
        self.assertEqual([len(unpack_fields(m[3][0])) for m in self.broker.commands(protocol.SUBMIT)], [12, 12, 4])
        self.assertEqual(sorted(results), sorted(ids))
        for i, task_id in enumerate(ids):
            if i == 4:
                self.assertEqual((results[task_id].status, results[task_id].kind), ("rejected", "rejected"))
                self.assertEqual(results[task_id].error, "queue is full (max_queued 1000)")
            else:
                self.assertEqual((results[task_id].status, results[task_id].value), ("ok", {"i": i}))
        with self.assertRaisesRegex(ConveyorError, "t-4 rejected: queue is full"):
            client.submit("echo", {"i": 4}, id="t-4", wait=5)

    def test_requests_and_their_replies(self):
        broker_hello = {"role": "broker", "versions": [2, 3], "capabilities": ["leases"], "software": "fake"}

        def answer(routing_id, tag, command, body):
            if command == protocol.STATUS:
                return [[tag, b"\x15", body[0], b"done", b"ok", b'{"n":1}', b'{"thread":3}']]
            if command == protocol.CANCEL:
                return [[tag, b"\x14", body[0], b"cancelled"]]
            if command == protocol.STATS:
                return [[tag, b"\x16", json.dumps({"totals": {"submitted": 7}, "consumers": []}).encode()]]
            if command == protocol.HELLO:
                return [[tag, b"\x08", json.dumps(broker_hello).encode()]]
            return echo_broker(routing_id, tag, command, body)
        client = self.start(answer)
        report = client.status("job-1", timeout=5)
        self.assertEqual((report.state, report.result.value, report.result.info), ("done", {"n": 1}, {"thread": 3}))
        self.assertEqual(client.cancel("q1", timeout=5), "cancelled")
        self.assertEqual(client.stats(timeout=5)["totals"]["submitted"], 7)
        self.assertEqual(client.hello(["leases"], timeout=5), broker_hello)
        self.assertEqual(client.broker_hello, broker_hello)
        self.assertGreaterEqual(client.ping(timeout=5), 0)
        sent = {command: body for _, _, command, body in self.broker.received}
        self.assertEqual(sent[protocol.STATUS], [b"job-1"])
        self.assertEqual(sent[protocol.CANCEL], [b"q1"])
        self.assertEqual(sent[protocol.STATS], [])
        self.assertEqual(sent[protocol.HELLO], [hello_body("producer", (2, 3), ["leases"], SOFTWARE)])
        client.close()
        deadline = time.monotonic() + 2
        while not self.broker.commands(protocol.DISCONNECT) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertEqual(len(self.broker.commands(protocol.DISCONNECT)), 1, "close() says DISCONNECT")

    def test_a_version_2_broker_is_spoken_to_in_version_2(self):
        def answer(routing_id, tag, command, body):
            if tag == TAG:
                return [[TAG_V2, b"\x1f", b'unsupported protocol "CVY3": this peer speaks "CVY2"']]
            return echo_broker(routing_id, tag, command, body)
        client = self.start(answer)
        client.submit("echo", {"n": 1}, id="job-1", options=TaskOptions(timeout_ms=5000))
        result = client.result("job-1", timeout=5)
        self.assertEqual((result.status, result.value), ("ok", {"n": 1}))
        self.assertEqual((client.version, client.fell_back, client.tag), (2, True, TAG_V2))
        v2 = [m[3][0] for m in self.broker.commands(protocol.SUBMIT) if m[1] == TAG_V2]
        options = bytes.fromhex("00001388" "00000000" "00000001" "000003e8")
        self.assertEqual(v2, [pack_fields([b"job-1", b"echo", options, b'{"n":1}'])])
        with self.assertRaisesRegex(ConveyorError, "HELLO is a version-3 command"):
            client.hello()

    def test_without_fall_back_a_version_2_broker_is_an_error(self):
        def answer(routing_id, tag, command, body):
            return [[TAG_V2, b"\x1f", b'unsupported protocol "CVY3": this peer speaks "CVY2"']]
        client = self.start(answer, fall_back=False)
        client.submit("echo", {}, id="job-1")
        self.assertEqual(client.results(["job-1"], timeout=0.5), {})
        self.assertEqual(client.version, 3)
        self.assertTrue(client.errors and "CVY3" in client.errors[0], client.errors)
        self.assertTrue(all(m[1] == TAG for m in self.broker.received), "it must not speak CVY2 by itself")

    def test_a_notice_is_kept_and_logged(self):
        notice = {"id": "n-1", "name": "ecko", "notice": "no connected consumer serves 'ecko'; served now: echo"}

        def answer(routing_id, tag, command, body):
            if command == protocol.SUBMIT:
                return [[tag, b"\x11", pack_fields([b"n-1"])], [tag, b"\x1a", json.dumps(notice).encode()]]
            return echo_broker(routing_id, tag, command, body)
        client = self.start(answer)
        self.assertEqual(client.wait_accepted([client.submit("ecko", {}, id="n-1")], timeout=5), {"n-1": None})
        client.ping(timeout=5)
        self.assertEqual(client.notices, [notice])
        self.assertIn(f"broker notice: {notice['notice']}", self.logs)
        self.assertEqual(client.pending_ids(), ["n-1"], "a NOTICE does not finish the task")

    def test_a_silent_broker_gets_the_pending_tasks_again(self):
        client = self.start(lambda *message: [], heartbeat_interval=0.1, liveness=2)
        client.submit("echo", {"n": 1}, id="job-1", options=TaskOptions(timeout_ms=5000))
        self.assertEqual(client.results(["job-1"], timeout=1.0), {})
        submits = [m[3] for m in self.broker.commands(protocol.SUBMIT)]
        self.assertGreaterEqual(client.reconnects, 1)
        self.assertGreaterEqual(len(submits), 2, "the task was not submitted again after the silence")
        self.assertTrue(all(frames == [SUBMIT_FRAME] for frames in submits), submits)
        self.assertTrue(any("reconnecting and resubmitting 1 task(s)" in line for line in self.logs), self.logs)

    def test_ids_names_and_routing_ids_are_checked(self):
        client = self.start(echo_broker)
        with self.assertRaisesRegex(ValueError, "task id must be 1-255 bytes"):
            client.submit("echo", {}, id="x" * 256)
        with self.assertRaisesRegex(ValueError, "task name must be 1-255 bytes"):
            client.submit("", {})
        with self.assertRaisesRegex(ValueError, "routing id"):
            Client(self.broker.endpoint, routing_id=b"\x00abc", context=self.broker.context)


if __name__ == "__main__":
    unittest.main()
