#!/usr/bin/env python3
"""A Conveyor producer in Python, written from docs/PROTOCOL.md alone (pyzmq is the only dependency).

As a library:

    from producer import Client, TaskOptions
    with Client("tcp://127.0.0.1:5555") as client:
        task_id = client.submit("sha256", {"seed": "hello", "iterations": 1000},
                                options=TaskOptions(timeout_ms=30_000, priority=5))
        result = client.result(task_id, timeout=35)
        print(result.status, result.value)

As a program: submits --count echo tasks and --sha256 sha256 tasks, checks every result, exercises
status, cancel, resubmission and stats, prints a summary, and exits 0 only if everything was right.
With --raw-checks it instead sends malformed messages and checks the broker's answers (protocol
version mismatch, unknown command, short SUBMIT group, malformed packed frames, garbage without the
tag).
"""
from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import signal
import struct
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

try:
    import zmq
except ImportError as error:  # pragma: no cover - reported to the user
    sys.stderr.write(
        f"error: the Python module 'zmq' (pyzmq) is not available ({error}); install it with: pip install pyzmq\n")
    sys.exit(3)

# --- Protocol constants (docs/PROTOCOL.md §2, §3) ---------------------------------------------

TAG = b"CVY2"

SUBMIT, CANCEL, STATUS, STATS, HEARTBEAT, DISCONNECT, DEAD_LETTERS = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
ACCEPTED, REJECTED, RESULT, CANCEL_REPLY, STATUS_REPLY, STATS_REPLY = 0x11, 0x12, 0x13, 0x14, 0x15, 0x16
DEAD_LETTERS_REPLY = 0x17
ERROR = 0x1F
READY, DISPATCH, DONE = 0x21, 0x22, 0x23

COMMAND_NAMES = {
    SUBMIT: "SUBMIT", CANCEL: "CANCEL", STATUS: "STATUS", STATS: "STATS", HEARTBEAT: "HEARTBEAT",
    DISCONNECT: "DISCONNECT", DEAD_LETTERS: "DEAD_LETTERS", DEAD_LETTERS_REPLY: "DEAD_LETTERS_REPLY", ACCEPTED: "ACCEPTED", REJECTED: "REJECTED", RESULT: "RESULT",
    CANCEL_REPLY: "CANCEL_REPLY", STATUS_REPLY: "STATUS_REPLY", STATS_REPLY: "STATS_REPLY", ERROR: "ERROR",
    READY: "READY", DISPATCH: "DISPATCH", DONE: "DONE",
}
# Body: ("packed", k) for one packed frame holding one or more groups of k fields (§2.1),
# ("fixed", n) for exactly n frames.
BODY_SHAPE = {
    SUBMIT: ("packed", 4), RESULT: ("packed", 4), DISPATCH: ("packed", 4), DONE: ("packed", 4),
    REJECTED: ("packed", 2), ACCEPTED: ("packed", 1),
    CANCEL: ("fixed", 1), STATUS: ("fixed", 1), READY: ("fixed", 1), STATS_REPLY: ("fixed", 1),
    ERROR: ("fixed", 1), STATS: ("fixed", 0), HEARTBEAT: ("fixed", 0), DISCONNECT: ("fixed", 0),
    CANCEL_REPLY: ("fixed", 2), STATUS_REPLY: ("fixed", 5),
    DEAD_LETTERS: ("fixed", 2), DEAD_LETTERS_REPLY: ("fixed", 1),
}

MAX_IDENTIFIER_BYTES = 255
MAX_GROUPS = 65_536                  # groups in one packed frame, at most (§2.1)
PACKED_MESSAGE_TARGET = 1 << 20      # stop adding groups to a message once its packed frame passes this (§7)

_LENGTH = struct.Struct(">I")


def pack_fields(fields: Iterable[bytes]) -> bytes:
    """The packed frame of a group command (§2.1): each field as a 4-byte big-endian length and its bytes."""
    return b"".join(_LENGTH.pack(len(field)) + field for field in fields)


def unpack_fields(frame: bytes) -> List[bytes]:
    """The fields of a packed frame (§2.1); raises ValueError for a truncated length or a field that
    runs past the end of the frame."""
    fields, offset, end = [], 0, len(frame)
    while offset < end:
        if end - offset < 4:
            raise ValueError(f"field {len(fields)} has a truncated length ({end - offset} bytes left)")
        (length,) = _LENGTH.unpack_from(frame, offset)
        offset += 4
        if length > end - offset:
            raise ValueError(f"field {len(fields)} claims {length} bytes; {end - offset} are left")
        fields.append(bytes(frame[offset:offset + length]))
        offset += length
    return fields


def parse(frames: Sequence[bytes]) -> Optional[Tuple[int, List[bytes]]]:
    """A received message checked as PROTOCOL.md §2 says: (command, body), where the body of a group
    command is the fields of its packed frame, group after group. None if the message is malformed."""
    if len(frames) < 2 or frames[0] != TAG or len(frames[1]) != 1:
        return None
    command = frames[1][0]
    shape = BODY_SHAPE.get(command)
    if shape is None:
        return None
    kind, size = shape
    if kind == "fixed":
        return (command, list(frames[2:])) if len(frames) - 2 == size else None
    if len(frames) != 3:
        return None
    try:
        fields = unpack_fields(frames[2])
    except ValueError:
        return None
    if not fields or len(fields) % size or len(fields) > MAX_GROUPS * size:
        return None
    return command, fields


def well_formed(frames: Sequence[bytes]) -> bool:
    """Whether a received message passes the checks of PROTOCOL.md §2."""
    return parse(frames) is not None


# --- Data types -------------------------------------------------------------------------------

class ConveyorError(Exception):
    """Base class of this client's errors."""


class BrokerTimeout(ConveyorError):
    """The broker did not answer in time."""


class BrokerProtocolError(ConveyorError):
    """The broker sent ERROR: one of our messages broke the protocol."""


@dataclass(frozen=True)
class TaskOptions:
    """The 16-byte options frame of SUBMIT (PROTOCOL.md §6.1)."""
    timeout_ms: int = 300_000
    priority: int = 0
    max_attempts: int = 1
    retry_backoff_ms: int = 1_000

    def __post_init__(self) -> None:
        if not 0 < self.timeout_ms <= 0xFFFFFFFF:
            raise ValueError("timeout_ms must be 1 to 2**32-1")
        if not -2**31 <= self.priority < 2**31:
            raise ValueError("priority must fit in a signed 32-bit integer")
        if not 0 <= self.max_attempts <= 0xFFFFFFFF or not 0 <= self.retry_backoff_ms <= 0xFFFFFFFF:
            raise ValueError("max_attempts and retry_backoff_ms must fit in an unsigned 32-bit integer")

    def encode(self) -> bytes:
        """The options frame: empty for the defaults, 16 big-endian bytes otherwise."""
        if self == DEFAULT_OPTIONS:
            return b""
        return struct.pack(">IiII", self.timeout_ms, self.priority, self.max_attempts, self.retry_backoff_ms)


DEFAULT_OPTIONS = TaskOptions()


@dataclass
class Result:
    """A finished task (PROTOCOL.md §4.4): status, body JSON, info JSON."""
    id: str
    status: str
    body: bytes
    info: Dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def value(self) -> Any:
        """The body decoded from JSON (None if it is not JSON)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None

    @property
    def error(self) -> Optional[str]:
        v = self.value
        return v.get("error") if not self.ok and isinstance(v, dict) else None

    @property
    def kind(self) -> Optional[str]:
        v = self.value
        return v.get("kind") if not self.ok and isinstance(v, dict) else None

    def describe_worker(self) -> str:
        i = self.info
        parts = []
        if "host" in i:
            parts.append(f"{i['host']} pid {i.get('pid', '?')}")
        if "process" in i:
            parts.append(f"process {i['process']}")
        if "thread" in i:
            parts.append(f"thread {i['thread']}")
        if "attempts" in i:
            parts.append(f"attempt {i['attempts']}")
        if "elapsed_ms" in i:
            parts.append(f"{i['elapsed_ms']} ms")
        return ", ".join(parts)


@dataclass
class StatusReport:
    """STATUS_REPLY (PROTOCOL.md §4.6)."""
    id: str
    state: str  # queued, running, done, unknown
    result: Optional[Result]


@dataclass
class _Pending:
    """A task sent and not yet finished, kept so that it can be submitted again."""
    group: Tuple[bytes, bytes, bytes, bytes]
    accepted: bool = False


def _decode_json_object(frame: bytes) -> Dict[str, Any]:
    try:
        value = json.loads(frame) if frame else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _identifier(text: str, what: str) -> bytes:
    raw = text.encode("utf-8")
    if not 1 <= len(raw) <= MAX_IDENTIFIER_BYTES:
        raise ValueError(f"{what} must be 1-{MAX_IDENTIFIER_BYTES} bytes of UTF-8, got {len(raw)}: {text[:40]!r}")
    return raw


# --- The client -------------------------------------------------------------------------------

class Client:
    """A single-threaded Conveyor producer over one DEALER socket.

    Calls that wait (``wait_accepted``, ``result``, ``results``, ``status``, ``cancel``, ``stats``,
    ``ping``) read and dispatch everything the broker sends meanwhile, heartbeat while work is
    pending, and reconnect and resubmit pending tasks when the broker goes silent (§10). Every wait
    has a timeout; nothing blocks forever.
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", *, routing_id: Optional[bytes] = None,
                 heartbeat_interval: float = 1.0, liveness: int = 4, batch: int = 128,
                 context: Optional["zmq.Context"] = None, log=None) -> None:
        self.endpoint = endpoint
        self.routing_id = routing_id or f"py-{os.getpid()}-{uuid.uuid4().hex[:12]}".encode()
        if not 1 <= len(self.routing_id) <= 255 or self.routing_id[0] == 0:
            raise ValueError("routing id must be 1-255 bytes and must not start with a zero byte")
        self.heartbeat_interval = heartbeat_interval
        self.liveness = liveness
        self.batch = min(max(1, batch), MAX_GROUPS)
        self._context = context or zmq.Context.instance()
        self._log = log or (lambda text: sys.stderr.write(f"[conveyor] {text}\n"))
        self._socket: Optional[zmq.Socket] = None
        self._pending: Dict[str, _Pending] = {}          # sent, no result yet
        self._results: Dict[str, Result] = {}            # finished, not yet collected
        self._rejected: Dict[str, str] = {}              # id -> reason, not yet collected
        self._status_replies: Dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._cancel_replies: Dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._stats_replies: collections.deque = collections.deque()
        self._dead_letter_replies: collections.deque = collections.deque()
        self._heartbeat_replies = 0
        self._outstanding: List[List[bytes]] = []        # status/cancel/stats requests awaiting replies
        self.errors: List[str] = []                      # ERROR texts received
        self.reconnects = 0
        self.broker_disconnected = False
        self._connect()

    # -- connection --

    def _connect(self) -> None:
        socket = self._context.socket(zmq.DEALER)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.ROUTING_ID, self.routing_id)
        socket.setsockopt(zmq.RECONNECT_IVL, 100)
        socket.setsockopt(zmq.RECONNECT_IVL_MAX, 5000)
        socket.setsockopt(zmq.SNDHWM, 100_000)
        socket.setsockopt(zmq.RCVHWM, 100_000)
        # Watch the TCP connection: a broker restarted quickly answers heartbeats but has forgotten our
        # tasks, so every pending task is submitted again whenever the connection comes back (§8.1, §10).
        self._monitor = socket.get_monitor_socket(zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED)
        self._connected_before = False
        socket.connect(self.endpoint)
        self._socket = socket
        self._poller = zmq.Poller()
        self._poller.register(socket, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        now = time.monotonic()
        self._last_heard = now
        self._last_sent = now

    def _reconnect(self) -> None:
        """New socket, same routing id; send again every pending task and outstanding request (§8.1)."""
        self.reconnects += 1
        self._log(f"broker at {self.endpoint} silent for {self.heartbeat_interval * self.liveness:.1f} s; "
                  f"reconnecting and resubmitting {len(self._pending)} task(s)")
        self._close_socket()
        self._connect()
        self._resend_everything()

    def _resend_everything(self) -> None:
        self._send_groups([p.group for p in self._pending.values()])
        for frames in self._outstanding:
            self._send(frames)

    def _close_socket(self) -> None:
        if self._socket is None:
            return
        try:
            self._socket.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.close(linger=0)
        self._socket.close(linger=0)
        self._socket = None

    def close(self) -> None:
        """Says DISCONNECT and closes the socket."""
        if self._socket is None:
            return
        try:
            self._send([TAG, bytes([DISCONNECT])])
        except zmq.ZMQError:
            pass
        self._close_socket()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- sending --

    def _send(self, frames: List[bytes]) -> None:
        assert self._socket is not None, "client is closed"
        self._socket.send_multipart(frames, copy=False)
        self._last_sent = time.monotonic()

    def _send_groups(self, groups: Sequence[Tuple[bytes, bytes, bytes, bytes]]) -> None:
        """SUBMITs of up to ``batch`` tasks each, packed into one frame (§2.1, §4.1); a message takes
        no more tasks once its packed frame passes 1 MiB, so it holds many small tasks or one large one."""
        fields: List[bytes] = []
        count = size = 0
        for group in groups:
            fields.extend(group)
            count += 1
            size += sum(4 + len(field) for field in group)
            if count >= self.batch or size >= PACKED_MESSAGE_TARGET:
                self._send([TAG, bytes([SUBMIT]), pack_fields(fields)])
                fields, count, size = [], 0, 0
        if fields:
            self._send([TAG, bytes([SUBMIT]), pack_fields(fields)])

    @staticmethod
    def encode_args(args: Any) -> bytes:
        """Args as JSON bytes: bytes are sent as they are (they should be JSON), anything else is dumped."""
        if isinstance(args, (bytes, bytearray, memoryview)):
            return bytes(args)
        return json.dumps(args, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    def new_id(self) -> str:
        return uuid.uuid4().hex

    def submit_many(self, tasks: Iterable[Tuple[str, Any, Union[TaskOptions, bytes, None], Optional[str]]]) -> List[str]:
        """Sends tasks (name, args, options or None, id or None), many per SUBMIT. Returns their ids.

        Does not wait: use ``wait_accepted`` or ``results``. Submitting an id again is safe (§8.1).
        ``options`` may also be the raw bytes of the options frame (for testing the broker).
        """
        groups, ids = [], []
        for name, args, options, task_id in tasks:
            task_id = task_id or self.new_id()
            options_frame = bytes(options) if isinstance(options, (bytes, bytearray)) else (options or DEFAULT_OPTIONS).encode()
            group = (_identifier(task_id, "task id"), _identifier(name, "task name"), options_frame,
                     self.encode_args(args))
            self._pending[task_id] = _Pending(group)
            self._results.pop(task_id, None)
            self._rejected.pop(task_id, None)
            groups.append(group)
            ids.append(task_id)
        self._send_groups(groups)
        return ids

    def submit(self, name: str, args: Any, *, options: Optional[TaskOptions] = None,
               id: Optional[str] = None, wait: Optional[float] = None) -> str:
        """Sends one task and returns its id. With ``wait`` (seconds), also waits for the broker to
        accept it and raises ``ConveyorError`` if it was rejected."""
        task_id = self.submit_many([(name, args, options, id)])[0]
        if wait is not None:
            outcome = self.wait_accepted([task_id], timeout=wait)[task_id]
            if outcome is not None:
                raise ConveyorError(f"task {task_id} rejected: {outcome}")
        return task_id

    # -- receiving --

    def _handle(self, frames: List[bytes]) -> None:
        parsed = parse(frames)
        if parsed is None:
            self._log(f"dropped a malformed message from the broker ({len(frames)} frames)")
            return
        # For ACCEPTED, REJECTED and RESULT the body is the fields of the packed frame, group after group.
        command, body = parsed
        if command == ACCEPTED:
            for frame in body:
                pending = self._pending.get(frame.decode("utf-8", "replace"))
                if pending is not None:
                    pending.accepted = True
        elif command == REJECTED:
            for i in range(0, len(body), 2):
                task_id, reason = body[i].decode("utf-8", "replace"), body[i + 1].decode("utf-8", "replace")
                if self._pending.pop(task_id, None) is not None:
                    self._rejected[task_id] = reason
                    self._results[task_id] = Result(
                        task_id, "rejected", json.dumps({"error": reason, "kind": "rejected"}).encode(), {})
        elif command == RESULT:
            for i in range(0, len(body), 4):
                task_id = body[i].decode("utf-8", "replace")
                self._pending.pop(task_id, None)
                self._results[task_id] = Result(task_id, body[i + 1].decode("utf-8", "replace"), bytes(body[i + 2]),
                                                _decode_json_object(body[i + 3]))
        elif command == STATUS_REPLY:
            task_id, state = body[0].decode("utf-8", "replace"), body[1].decode("utf-8", "replace")
            result = None
            if state == "done":
                result = Result(task_id, body[2].decode("utf-8", "replace"), bytes(body[3]), _decode_json_object(body[4]))
            self._status_replies[task_id].append(StatusReport(task_id, state, result))
            self._forget_request(STATUS, body[0])
        elif command == CANCEL_REPLY:
            task_id = body[0].decode("utf-8", "replace")
            self._cancel_replies[task_id].append(body[1].decode("utf-8", "replace"))
            self._forget_request(CANCEL, body[0])
        elif command == STATS_REPLY:
            self._stats_replies.append(json.loads(body[0]))
            self._forget_request(STATS, None)
        elif command == DEAD_LETTERS_REPLY:
            self._dead_letter_replies.append(json.loads(body[0]))
            self._forget_request(DEAD_LETTERS, None)
        elif command == HEARTBEAT:
            self._heartbeat_replies += 1
            self._forget_request(HEARTBEAT, None)
        elif command == DISCONNECT:
            # The broker is stopping (§8.10) and forgets our tasks; they are submitted again when
            # the connection to its successor comes up (see _watch_connection).
            self.broker_disconnected = True
        elif command == ERROR:
            text = body[0].decode("utf-8", "replace")
            self.errors.append(text)
            self._log(f"broker reported a protocol error: {text}")
        else:
            self._log(f"unexpected {COMMAND_NAMES.get(command, hex(command))} from the broker")

    def _forget_request(self, command: int, task_id: Optional[bytes]) -> None:
        for i, frames in enumerate(self._outstanding):
            if frames[1][0] == command and (task_id is None or frames[2] == task_id):
                del self._outstanding[i]
                return

    def _pump(self, timeout: float) -> None:
        """Waits up to ``timeout`` seconds for messages and handles all that came; heartbeats and
        reconnects as PROTOCOL.md §10 says."""
        assert self._socket is not None, "client is closed"
        ready = dict(self._poller.poll(max(0, int(timeout * 1000))))
        if self._monitor in ready:
            self._watch_connection()
        if self._socket in ready:
            while True:
                try:
                    frames = self._socket.recv_multipart(zmq.NOBLOCK)
                except zmq.Again:
                    break
                self._last_heard = time.monotonic()
                self._handle(frames)
        now = time.monotonic()
        if not self._pending and not self._outstanding:
            self._last_heard = now
            return
        if now - self._last_heard > self.heartbeat_interval * self.liveness:
            self._reconnect()
        elif now - self._last_sent >= self.heartbeat_interval:
            self._send([TAG, bytes([HEARTBEAT])])

    def _watch_connection(self) -> None:
        from zmq.utils.monitor import recv_monitor_message
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_CONNECTED:
                if self._connected_before and (self._pending or self._outstanding):
                    self.reconnects += 1
                    self._log(f"connection to {self.endpoint} is back; submitting {len(self._pending)} "
                              f"pending task(s) again")
                    self._resend_everything()
                self._connected_before = True
                self._last_heard = time.monotonic()

    def _wait(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrokerTimeout(f"no answer from the broker at {self.endpoint} for {what} within {timeout:.1f} s")
            self._pump(min(left, self.heartbeat_interval / 4))

    def _request(self, frames: List[bytes], done, timeout: float, what: str) -> None:
        self._outstanding.append(frames)
        self._send(frames)
        try:
            self._wait(done, timeout, what)
        except BrokerTimeout:
            if frames in self._outstanding:
                self._outstanding.remove(frames)
            raise

    # -- waiting --

    def wait_accepted(self, ids: Sequence[str], timeout: float = 10.0) -> Dict[str, Optional[str]]:
        """Waits until each task is accepted or rejected: id -> None (accepted) or the rejection reason."""
        def answered(task_id: str) -> bool:
            pending = self._pending.get(task_id)
            return (pending.accepted if pending is not None else True)
        self._wait(lambda: all(answered(i) for i in ids), timeout, f"acceptance of {len(ids)} task(s)")
        return {i: self._rejected.get(i) for i in ids}

    def results(self, ids: Sequence[str], timeout: float) -> Dict[str, Result]:
        """Waits up to ``timeout`` seconds for the results of ``ids``; returns those that came (a
        rejected task has a result with status "rejected"). Collected results are forgotten."""
        wanted = set(ids)
        try:
            self._wait(lambda: wanted.issubset(self._results.keys()), timeout, f"{len(wanted)} result(s)")
        except BrokerTimeout:
            pass
        out = {i: self._results.pop(i) for i in ids if i in self._results}
        for i in out:
            self._rejected.pop(i, None)
        return out

    def result(self, task_id: str, timeout: float) -> Result:
        """The result of one task; raises ``BrokerTimeout`` if it does not come in time."""
        got = self.results([task_id], timeout)
        if task_id not in got:
            raise BrokerTimeout(f"no result for task {task_id} within {timeout:.1f} s")
        return got[task_id]

    def pending_ids(self) -> List[str]:
        return list(self._pending)

    # -- requests --

    def status(self, task_id: str, timeout: float = 10.0) -> StatusReport:
        raw = _identifier(task_id, "task id")
        replies = self._status_replies[task_id]
        self._request([TAG, bytes([STATUS]), raw], lambda: bool(replies), timeout, f"STATUS {task_id}")
        return replies.popleft()

    def cancel(self, task_id: str, timeout: float = 10.0) -> str:
        """Asks the broker to cancel a task: "cancelled", "running", "done" or "unknown"."""
        raw = _identifier(task_id, "task id")
        replies = self._cancel_replies[task_id]
        self._request([TAG, bytes([CANCEL]), raw], lambda: bool(replies), timeout, f"CANCEL {task_id}")
        return replies.popleft()

    def stats(self, timeout: float = 10.0) -> Dict[str, Any]:
        self._request([TAG, bytes([STATS])], lambda: bool(self._stats_replies), timeout, "STATS")
        return self._stats_replies.popleft()

    def dead_letters(self, action: str, task_id: Optional[str] = None, timeout: float = 10.0) -> Dict[str, Any]:
        """Requeues (action "requeue") or purges ("purge") the dead letter ``task_id``, or all of them
        when it is None (§4.8). Answers {"action", "count"} or {"error"}. List them with ``stats()``."""
        raw = _identifier(task_id, "task id") if task_id else b""
        self._request([TAG, bytes([DEAD_LETTERS]), action.encode("utf-8"), raw],
                      lambda: bool(self._dead_letter_replies), timeout, f"DEAD_LETTERS {action}")
        return self._dead_letter_replies.popleft()

    def ping(self, timeout: float = 10.0) -> float:
        """A HEARTBEAT round trip, in seconds."""
        start, before = time.monotonic(), self._heartbeat_replies
        self._request([TAG, bytes([HEARTBEAT])], lambda: self._heartbeat_replies > before, timeout, "HEARTBEAT")
        return time.monotonic() - start


# --- The program ------------------------------------------------------------------------------

def iterated_sha256(seed: str, iterations: int) -> str:
    """What the stock `sha256` task computes: SHA-256 of the seed's UTF-8, then of the 32-byte digest
    `iterations` more times, as lowercase hex."""
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    for _ in range(iterations):
        digest = hashlib.sha256(digest).digest()
    return digest.hex()


class Checker:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: List[str] = []

    def check(self, condition: bool, what: str) -> bool:
        if condition:
            self.passed += 1
            print(f"PASS  {what}", flush=True)
        else:
            self.failed.append(what)
            print(f"FAIL  {what}", flush=True)
        return condition


def run_tasks(args: argparse.Namespace) -> int:
    deadline = time.monotonic() + args.timeout
    left = lambda: max(0.1, deadline - time.monotonic())
    task_timeout_ms = int(args.timeout * 1000)
    checker = Checker()
    with Client(args.broker) as client:
        run = uuid.uuid4().hex[:8]
        expected: Dict[str, Tuple[str, Any]] = {}
        tasks = []
        for i in range(args.count):
            payload = {"i": i, "text": f"hello {i}", "unicode": "h\u00e9llo \u2713", "list": [i, i * 2, None, True],
                       "nested": {"x": i / 4}}
            task_id = f"py-{run}-echo-{i}"
            tasks.append(("echo", payload, TaskOptions(timeout_ms=task_timeout_ms, priority=i % 3), task_id))
            expected[task_id] = ("echo", payload)
        for j in range(args.sha256):
            seed, iterations = f"seed-{run}-{j}", 50 * j
            task_id = f"py-{run}-sha256-{j}"
            tasks.append(("sha256", {"seed": seed, "iterations": iterations},
                          TaskOptions(timeout_ms=task_timeout_ms, priority=-1), task_id))
            expected[task_id] = ("sha256", {"digest": iterated_sha256(seed, iterations)})
        ids = client.submit_many(tasks)
        print(f"submitted {len(ids)} tasks to {args.broker}", flush=True)

        got = client.results(ids, timeout=left())
        succeeded, failed = 0, 0
        for task_id in ids:
            result = got.get(task_id)
            if result is None:
                continue
            name, want = expected[task_id]
            correct = result.ok and result.value == want
            succeeded += correct
            failed += not correct
            shown = result.body.decode("utf-8", "replace")
            if len(shown) > 120:
                shown = shown[:117] + "..."
            mark = "ok   " if correct else "WRONG"
            if args.verbose or not correct:
                print(f"{mark} {task_id} {result.status} {shown} ({result.describe_worker()})", flush=True)
            if not correct:
                print(f"      expected {json.dumps(want)}", flush=True)
        missing = [i for i in ids if i not in got]
        for task_id in missing[:20]:
            print(f"MISSING {task_id}: no result within the time limit", flush=True)

        # The rest of the API, against what PROTOCOL.md promises.
        if ids and not args.skip_api_checks:
            first = ids[0]
            try:
                report = client.status(first, timeout=left())
                checker.check(report.state == "done" and report.result is not None and report.result.ok
                              and report.result.value == expected[first][1],
                              f"STATUS of a finished task is done with its result ({report.state})")
                unknown = client.status(f"py-{run}-never-submitted", timeout=left())
                checker.check(unknown.state == "unknown" and unknown.result is None,
                              f"STATUS of an unknown id is unknown ({unknown.state})")
                checker.check(client.cancel(first, timeout=left()) == "done", "CANCEL of a finished task says done")
                checker.check(client.cancel(f"py-{run}-never-submitted", timeout=left()) == "unknown",
                              "CANCEL of an unknown id says unknown")
                # Resubmitting a held id is the same task: accepted, and its kept result comes again.
                again = client.submit_many([("echo", {"different": True}, None, first)])[0]
                accepted = client.wait_accepted([again], timeout=left())
                checker.check(accepted[again] is None, "resubmitting a finished id is accepted")
                repeat = client.results([again], timeout=min(left(), 10))
                checker.check(again in repeat and repeat[again].value == expected[first][1],
                              "resubmitting a finished id re-delivers its kept result")
                # A task no consumer serves waits in the queue, so it can be cancelled.
                lonely = client.submit(f"no-such-task-{run}", {"x": 1}, id=f"py-{run}-lonely",
                                       options=TaskOptions(timeout_ms=60_000), wait=left())
                queued = client.status(lonely, timeout=left())
                checker.check(queued.state == "queued", f"a task nobody serves is queued ({queued.state})")
                checker.check(client.cancel(lonely, timeout=left()) == "cancelled", "CANCEL of a queued task says cancelled")
                cancelled = client.results([lonely], timeout=min(left(), 10)).get(lonely)
                checker.check(cancelled is not None and cancelled.status == "cancelled" and cancelled.kind == "cancelled",
                              "a cancelled task gets a cancelled RESULT")
                # A rejected task: TaskOptions cannot encode bad options, so send a 3-byte options frame.
                bad_id = client.submit_many([("echo", {}, b"\x00\x01\x02", f"py-{run}-bad-options")])[0]
                rejected = client.wait_accepted([bad_id], timeout=left())
                checker.check(rejected[bad_id] is not None and "options" in rejected[bad_id],
                              f"a bad options frame is REJECTED ({rejected[bad_id]})")
                client.results([bad_id], timeout=0)
                stats = client.stats(timeout=left())
                checker.check(isinstance(stats.get("totals"), dict) and stats["totals"].get("submitted", 0) >= len(ids)
                              and isinstance(stats.get("consumers"), list),
                              f"STATS answers with totals (submitted {stats.get('totals', {}).get('submitted')}) "
                              f"and {len(stats.get('consumers', []))} consumer(s)")
                checker.check(client.ping(timeout=left()) >= 0, "HEARTBEAT is answered")
                checker.check(not client.errors, f"no ERROR replies ({client.errors})")
            except BrokerTimeout as error:
                checker.check(False, f"broker answered the API checks in time: {error}")

    total = len(ids)
    all_ok = succeeded == total and not missing and not checker.failed
    print(f"summary: {succeeded}/{total} tasks succeeded, {failed} wrong or failed, {len(missing)} missing; "
          f"{checker.passed}/{checker.passed + len(checker.failed)} API checks passed", flush=True)
    print("ALL OK" if all_ok else "FAILED", flush=True)
    return 0 if all_ok else 1


def run_raw_checks(args: argparse.Namespace) -> int:
    """Sends malformed messages on a bare DEALER and checks the broker's answers (PROTOCOL.md §9)."""
    checker = Checker()
    context = zmq.Context.instance()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.ROUTING_ID, f"py-raw-{os.getpid()}-{uuid.uuid4().hex[:8]}".encode())
    sock.connect(args.broker)
    reply_wait = min(10.0, args.timeout)

    def receive(timeout: float) -> Optional[List[bytes]]:
        if sock.poll(int(timeout * 1000), zmq.POLLIN):
            return sock.recv_multipart()
        return None

    def unknown(task_id: bytes, what: str) -> None:
        """Checks with STATUS that the broker holds no task ``task_id``."""
        sock.send_multipart([TAG, bytes([STATUS]), task_id])
        reply = receive(reply_wait)
        parsed = parse(reply) if reply is not None else None
        state = parsed[1][1] if parsed and parsed[0] == STATUS_REPLY else None
        checker.check(state == b"unknown", f"{what} ({state!r})")

    def expect_error(frames: List[bytes], must_contain: Sequence[str], what: str) -> None:
        sock.send_multipart(frames)
        reply = receive(reply_wait)
        if reply is None:
            checker.check(False, f"{what}: an ERROR reply (got nothing within {reply_wait} s)")
            return
        text = reply[2].decode("utf-8", "replace") if len(reply) == 3 else ""
        ok = (len(reply) == 3 and reply[0] == TAG and reply[1] == bytes([ERROR])
              and all(word in text for word in must_contain))
        checker.check(ok, f"{what}: ERROR reply {text!r}" if ok else f"{what}: expected ERROR mentioning "
                      f"{list(must_contain)}, got {[f[:80] for f in reply]}")

    run = uuid.uuid4().hex[:8]
    before = None
    try:
        sock.send_multipart([TAG, bytes([STATS])])
        reply = receive(reply_wait)
        if reply and well_formed(reply) and reply[1] == bytes([STATS_REPLY]):
            before = json.loads(reply[2])["totals"]["bad_messages"]
        checker.check(before is not None, "STATS answered before the checks")

        def group(suffix: str) -> List[bytes]:
            return [f"raw-{run}-{suffix}".encode(), b"echo", b"", b"1"]

        expect_error([b"CVY9", bytes([SUBMIT]), pack_fields(group("v9"))],
                     ["CVY9", "CVY2"], "wrong protocol version tag CVY9")
        expect_error([b"CVY1", bytes([SUBMIT])] + group("v1"),
                     ["unsupported protocol", "CVY1", "CVY2"], "a version-1 SUBMIT (tag CVY1, one frame per field)")
        expect_error([TAG, b"\x7e"], ["0x7e"], "unknown command byte 0x7e")
        expect_error([TAG, b"\x01\x01"], ["command"], "two-byte command frame")
        expect_error([TAG, bytes([SUBMIT]), pack_fields(group("short")[:3])],
                     ["SUBMIT", "4"], "SUBMIT with a 3-field group")
        expect_error([TAG, bytes([SUBMIT])] + group("unpacked"),
                     ["malformed", "SUBMIT", "packed"], "SUBMIT with one frame per field under the CVY2 tag")
        expect_error([TAG, bytes([SUBMIT]), pack_fields(group("two-a")), pack_fields(group("two-b"))],
                     ["malformed", "packed"], "SUBMIT with two packed frames")
        expect_error([TAG, bytes([SUBMIT]), b""], ["malformed", "SUBMIT"], "SUBMIT with an empty packed frame")
        # A good first group, then a group whose args length (100) runs past the end of the frame (7 bytes left).
        past_end = (pack_fields(group("past-end-ok")) + pack_fields(group("past-end")[:3])
                    + struct.pack(">I", 100) + b'{"a":1}')
        expect_error([TAG, bytes([SUBMIT]), past_end], ["malformed", "SUBMIT", "100"],
                     "a packed frame with a length running past the end")
        expect_error([TAG, bytes([SUBMIT]), pack_fields(group("truncated")) + b"\x00\x00"],
                     ["malformed", "truncated"], "a packed frame ending in a truncated length")
        expect_error([TAG, bytes([STATUS])], ["STATUS"], "STATUS without its id frame")
        expect_error([TAG, bytes([READY]), b"{}"], ["READY"], "a consumer command on the frontend")

        for garbage in ([b"hello", b"world"], [b"\x00\xffgarbage"], [b"", bytes([SUBMIT])],
                        [b"GET / HTTP/1.1\r\n\r\n"]):
            sock.send_multipart(garbage)
        silent = receive(1.0)
        checker.check(silent is None, "garbage without the tag gets no reply" if silent is None
                      else f"garbage without the tag gets no reply (got {[f[:80] for f in silent]})")

        # The malformed SUBMITs above must not have created a task, not even from a good group that
        # came before the bad one in the same packed frame.
        unknown(f"raw-{run}-short".encode(), "the SUBMIT with a short group created no task")
        unknown(f"raw-{run}-two-a".encode(), "the SUBMIT with two packed frames created no task")
        unknown(f"raw-{run}-past-end-ok".encode(),
                "the packed frame running past the end created no task, not even its good first group")

        # The broker still serves a normal submit, on the very connection that sent the garbage.
        task_id = f"raw-{run}-after".encode()
        sock.send_multipart([TAG, bytes([SUBMIT]), pack_fields([task_id, b"echo", b"", b'{"still":"alive"}'])])
        accepted = result = None
        deadline = time.monotonic() + reply_wait
        # A RESULT may come before its ACCEPTED (§8.2): wait for both.
        while time.monotonic() < deadline and (result is None or not accepted):
            message = receive(max(0.01, deadline - time.monotonic()))
            if message is None:
                break
            parsed = parse(message)
            if parsed is None:
                continue
            command, fields = parsed
            if command == ACCEPTED and task_id in fields:
                accepted = True
            if command == RESULT:
                for i in range(0, len(fields), 4):
                    if fields[i] == task_id:
                        result = fields[i:i + 4]
        checker.check(bool(accepted), "a normal SUBMIT after the garbage is ACCEPTED")
        checker.check(result is not None and result[1] == b"ok" and json.loads(result[2]) == {"still": "alive"},
                      f"and its RESULT is ok with the echoed args ({result[1:3] if result else None})")

        sock.send_multipart([TAG, bytes([STATS])])
        reply = receive(reply_wait)
        after = json.loads(reply[2])["totals"]["bad_messages"] if reply and reply[1] == bytes([STATS_REPLY]) else None
        # Eleven messages failed the envelope checks (the READY is well formed, so not counted), plus four garbage.
        sent_bad = 11 + 4
        checker.check(before is not None and after is not None and after - before >= sent_bad,
                      f"STATS counts the bad messages (bad_messages {before} -> {after}, at least +{sent_bad})")
    finally:
        sock.close(linger=0)

    total = checker.passed + len(checker.failed)
    print(f"summary: {checker.passed}/{total} raw checks passed", flush=True)
    print("ALL OK" if not checker.failed else "FAILED", flush=True)
    return 0 if not checker.failed else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Submit echo and sha256 tasks to a Conveyor broker and check the results.")
    parser.add_argument("--broker", default="tcp://127.0.0.1:5555", help="the broker's frontend endpoint")
    parser.add_argument("--count", type=int, default=100, help="echo tasks to submit (default 100)")
    parser.add_argument("--sha256", type=int, default=10, help="sha256 tasks to submit (default 10)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds allowed in all (default 60)")
    parser.add_argument("--quiet", dest="verbose", action="store_false", help="print only wrong results and the summary")
    parser.add_argument("--skip-api-checks", action="store_true", help="only submit tasks and check their results")
    parser.add_argument("--raw-checks", action="store_true",
                        help="send malformed messages and check the broker's answers instead")
    args = parser.parse_args(argv)
    if args.count < 0 or args.sha256 < 0 or args.timeout <= 0:
        parser.error("--count and --sha256 must not be negative; --timeout must be positive")

    # A last resort so that the program never hangs, whatever happens to the broker.
    def watchdog(signum, frame):
        sys.stderr.write(f"FAILED: still running after {args.timeout + 15:.0f} s; giving up\n")
        os._exit(2)
    signal.signal(signal.SIGALRM, watchdog)
    signal.alarm(int(args.timeout) + 15)
    try:
        return run_raw_checks(args) if args.raw_checks else run_tasks(args)
    finally:
        signal.alarm(0)


if __name__ == "__main__":
    sys.exit(main())
