"""The Conveyor producer client: one ``Client`` over one ZeroMQ DEALER socket (pyzmq).

    from conveyor_client import Client, TaskOptions
    with Client("tcp://127.0.0.1:5555") as client:
        task_id = client.submit("sha256", {"seed": "hello", "iterations": 1000},
                                options=TaskOptions(timeout_ms=30_000, priority=5))
        result = client.result(task_id, timeout=35)
        print(result.status, result.value)

It speaks protocol version 3 (CVY3) by default, and version 2 (CVY2) with protocol=2; a client of
version 3 that finds a version-2 broker switches to version 2 by itself (PROTOCOL.md §13).
"""
from __future__ import annotations

import collections
import dataclasses
import datetime
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple, Union

from . import __version__
from .protocol import (
    ACCEPTED, CANCEL, CANCEL_REPLY, COMMAND_NAMES, DEAD_LETTERS, DEAD_LETTERS_REPLY, DEFAULT_OPTIONS, LIMIT, LIMIT_REPLY, PAUSE, PAUSE_REPLY,
    SCHEDULE, SCHEDULE_REPLY,
    DISCONNECT, ERROR, HEARTBEAT, HELLO, KNOWN_STATUSES, MAX_GROUPS, MAX_IDENTIFIER_BYTES, NOTICE,
    PACKED_MESSAGE_TARGET, READ, READ_REPORT_BYTES, REJECTED, RESULT, RESUME, STATS, STATS_REPLY, STATUS,
    STATUS_REPLY, SUBMIT, TAG_V2, TAGS, TaskOptions, hello_body, pack_fields, parse,
)

try:
    import zmq
except ImportError as _zmq_error:  # pragma: no cover - reported when a socket is needed
    zmq = None
    _ZMQ_IMPORT_ERROR: Optional[ImportError] = _zmq_error
else:
    _ZMQ_IMPORT_ERROR = None

SOFTWARE = f"conveyor-python {__version__}"   # the ``software`` of this client's HELLO (§5.5)


def _require_zmq() -> None:
    """Raises ImportError, saying what to install, when pyzmq is missing (only sockets need it)."""
    if zmq is None:
        raise ImportError(f"the Python module 'zmq' (pyzmq) is not available ({_ZMQ_IMPORT_ERROR}); "
                          "install it with: pip install pyzmq")


class ConveyorError(Exception):
    """Base class of this client's errors."""


class BrokerTimeout(ConveyorError):
    """The broker did not answer in time."""


class BrokerProtocolError(ConveyorError):
    """The broker sent ERROR: one of our messages broke the protocol."""


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
    def recognized(self) -> bool:
        """Whether the status is one this client knows; any other word is a failure (§6.4)."""
        return self.status in KNOWN_STATUSES or self.status == "rejected"

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
    state: str  # queued, scheduled, reserved, running, done, unknown; or a newer broker's word (§4.6)
    result: Optional[Result]
    due_at: Optional[int] = None  # a scheduled task's due time, ms since the Unix epoch

    @property
    def held(self) -> bool:
        """Whether the broker holds the task: every state but "unknown", unknown words included."""
        return self.state != "unknown"

    @property
    def finished(self) -> bool:
        return self.state == "done"


@dataclass
class _Pending:
    """A task sent and not yet finished, kept so that it can be submitted again (in whichever
    version the client then speaks: the options are encoded when sent)."""
    task_id: bytes
    name: bytes
    options: Union[TaskOptions, bytes]
    args: bytes
    accepted: bool = False

    def group(self, version: int) -> Tuple[bytes, bytes, bytes, bytes]:
        options = self.options if isinstance(self.options, bytes) else self.options.encode(version)
        return (self.task_id, self.name, options, self.args)


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
                 context: Optional["zmq.Context"] = None, log=None, protocol: int = 3,
                 fall_back: bool = True) -> None:
        _require_zmq()
        if protocol not in TAGS:
            raise ValueError(f"protocol must be one of {sorted(TAGS)}")
        self.version = protocol            # the version this client speaks now (§13)
        self.fall_back = fall_back         # switch to version 2 when the broker speaks only that
        self.broker_hello: Optional[Dict[str, Any]] = None
        self.fell_back = False             # whether it switched to version 2 for a version-2 broker
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
        self._existing: Dict[str, str] = {}              # id submitted -> the held task its unique key matched
        self._status_replies: Dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._cancel_replies: Dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._stats_replies: collections.deque = collections.deque()
        self._dead_letter_replies: collections.deque = collections.deque()
        self._pause_replies: collections.deque = collections.deque()
        self._schedule_replies: collections.deque = collections.deque()
        self._limit_replies: collections.deque = collections.deque()
        self._heartbeat_replies = 0
        self._hello_replies: collections.deque = collections.deque()
        self._outstanding: List[List[bytes]] = []        # status/cancel/stats requests awaiting replies
        self.errors: List[str] = []                      # ERROR texts received
        self.notices: List[Dict[str, Any]] = []          # NOTICE bodies received, e.g. {"id", "name", "notice"}
        self.reconnects = 0
        self.broker_disconnected = False
        self._connect()

    @property
    def tag(self) -> bytes:
        return TAGS[self.version]

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
        self._unreported = 0
        self._last_read_report = now
        if not hasattr(self, "_reads_taken"):
            self._reads_taken = True

    def _report_read(self, what: str) -> None:
        """READ (§4.8.2): the bytes of the broker's messages read since the last one, or 'connected'."""
        self._unreported = 0
        self._last_read_report = time.monotonic()
        try:
            self._socket.send_multipart([self.tag, bytes([READ]), what.encode()], zmq.NOBLOCK)
        except zmq.Again:
            pass

    def _reconnect(self) -> None:
        """New socket, same routing id; send again every pending task and outstanding request (§8.1)."""
        self.reconnects += 1
        self._log(f"broker at {self.endpoint} silent for {self.heartbeat_interval * self.liveness:.1f} s; "
                  f"reconnecting and resubmitting {len(self._pending)} task(s)")
        self._close_socket()
        self._connect()
        self._resend_everything()

    def _resend_everything(self) -> None:
        self._send_groups([p.group(self.version) for p in self._pending.values()])
        for i, frames in enumerate(self._outstanding):
            frames = self._outstanding[i] = [self.tag] + frames[1:]
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
            self._send([self.tag, bytes([DISCONNECT])])
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
                self._send([self.tag, bytes([SUBMIT]), pack_fields(fields)])
                fields, count, size = [], 0, 0
        if fields:
            self._send([self.tag, bytes([SUBMIT]), pack_fields(fields)])

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
        ``options`` may also be the raw bytes of the options field (for testing the broker).
        """
        groups, ids = [], []
        for name, args, options, task_id in tasks:
            task_id = task_id or self.new_id()
            raw_options = bytes(options) if isinstance(options, (bytes, bytearray)) else (options or DEFAULT_OPTIONS)
            pending = _Pending(_identifier(task_id, "task id"), _identifier(name, "task name"), raw_options,
                               self.encode_args(args))
            self._pending[task_id] = pending
            self._results.pop(task_id, None)
            self._rejected.pop(task_id, None)
            groups.append(pending.group(self.version))
            ids.append(task_id)
        self._send_groups(groups)
        return ids

    def submit(self, name: str, args: Any, *, options: Optional[TaskOptions] = None,
               id: Optional[str] = None, wait: Optional[float] = None,
               not_before: Union[datetime.datetime, float, None] = None, delay: Optional[float] = None,
               unique_key: Optional[str] = None, unique_ttl: Optional[float] = None) -> str:
        """Sends one task and returns its id. With ``wait`` (seconds), also waits for the broker to
        accept it and raises ``ConveyorError`` if it was rejected.

        ``not_before`` (an aware ``datetime``, or seconds since the Unix epoch) or ``delay``
        (seconds from now), not both: the task waits at the broker, ``scheduled``, until then; its
        timeout counts from that time (§8.12). ``unique_key`` (with ``unique_ttl``, seconds a finished
        task keeps the key; default 0): while a task of this name holds the key, the broker makes no
        new task and answers with that task's id (``existing_id``, once accepted) and its result."""
        if not_before is not None and delay is not None:
            raise ValueError("not_before and delay both say when the task runs: give one of them")
        if unique_ttl is not None and unique_key is None:
            raise ValueError("unique_ttl is how long a finished task keeps its unique_key: give unique_key too")
        changes: Dict[str, Any] = {}
        if isinstance(not_before, datetime.datetime):
            if not_before.tzinfo is None:
                raise ValueError("not_before is a datetime without a time zone: give an aware one "
                                 "(datetime(2026, 12, 24, 18, tzinfo=timezone.utc))")
            changes["not_before"] = int(not_before.timestamp() * 1000)
        elif not_before is not None:
            changes["not_before"] = int(float(not_before) * 1000)
        if delay is not None:
            if delay < 0:
                raise ValueError("delay must be 0 or more seconds")
            changes["not_before"] = int((time.time() + delay) * 1000)
        if unique_key is not None:
            changes["unique_key"] = unique_key
            changes["unique_ttl_ms"] = int(round((unique_ttl or 0) * 1000))
        if changes:
            options = dataclasses.replace(options or DEFAULT_OPTIONS, **changes)
        task_id = self.submit_many([(name, args, options, id)])[0]
        if wait is not None:
            outcome = self.wait_accepted([task_id], timeout=wait)[task_id]
            if outcome is not None:
                raise ConveyorError(f"task {task_id} rejected: {outcome}")
        return task_id

    # -- receiving --

    def _handle(self, frames: List[bytes]) -> None:
        parsed = parse(frames, self.tag)
        if parsed is None:
            if self._broker_speaks_only_v2(frames):
                return
            self._log(f"dropped a malformed or unknown message from the broker ({len(frames)} frames)")
            return
        # For ACCEPTED, REJECTED and RESULT the body is the fields of the packed frame, group after group.
        command, body = parsed
        if command == ACCEPTED:
            for frame in body:
                # "ID HELD": the task's unique key was held by task HELD; no task was made (§8.12).
                task_id, _, held = frame.decode("utf-8", "replace").partition(" ")
                pending = self._pending.get(task_id)
                if pending is not None:
                    pending.accepted = True
                    if held:
                        self._existing[task_id] = held
        elif command == REJECTED:
            for i in range(0, len(body), 2):
                task_id, reason = body[i].decode("utf-8", "replace"), body[i + 1].decode("utf-8", "replace")
                if self._pending.pop(task_id, None) is not None:
                    self._rejected[task_id] = reason
                    self._results[task_id] = Result(
                        task_id, "rejected", json.dumps({"error": reason, "kind": "rejected"}).encode(), {})
        elif command == RESULT:
            for i in range(0, len(body), 4):
                # "ID HELD": the result of task HELD, for the submit of ID that matched its unique key.
                task_id, _, held = body[i].decode("utf-8", "replace").partition(" ")
                if held:
                    self._existing[task_id] = held
                self._pending.pop(task_id, None)
                self._results[task_id] = Result(held or task_id, body[i + 1].decode("utf-8", "replace"),
                                                bytes(body[i + 2]), _decode_json_object(body[i + 3]))
        elif command == STATUS_REPLY:
            task_id, state = body[0].decode("utf-8", "replace"), body[1].decode("utf-8", "replace")
            result = None
            due_at = None
            if state == "done":
                result = Result(task_id, body[2].decode("utf-8", "replace"), bytes(body[3]), _decode_json_object(body[4]))
            elif state == "scheduled":
                due_at = _decode_json_object(body[4]).get("due_at")
            self._status_replies[task_id].append(StatusReport(task_id, state, result, due_at))
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
        elif command == PAUSE_REPLY:
            self._pause_replies.append(json.loads(body[0]))
        elif command == SCHEDULE_REPLY:
            self._schedule_replies.append(json.loads(body[0]))
        elif command == LIMIT_REPLY:
            self._limit_replies.append(json.loads(body[0]))
            self._forget_request(DEAD_LETTERS, None)
        elif command == HEARTBEAT:
            self._heartbeat_replies += 1
            self._forget_request(HEARTBEAT, None)
        elif command == HELLO:
            try:
                hello = json.loads(body[0])
            except ValueError:
                hello = None
            if isinstance(hello, dict):
                self.broker_hello = hello
                self._hello_replies.append(hello)
                self._forget_request(HELLO, None)
            else:
                self._log("dropped a HELLO from the broker whose body is not a JSON object")
        elif command == DISCONNECT:
            # The broker is stopping (§8.10) and forgets our tasks; they are submitted again when
            # the connection to its successor comes up (see _watch_connection).
            self.broker_disconnected = True
        elif command == NOTICE:
            # Something to know that does not change the task's outcome (no consumer serves it yet).
            try:
                notice = json.loads(body[0])
            except ValueError:
                notice = None
            if not isinstance(notice, dict) or not isinstance(notice.get("notice"), str):
                notice = {"notice": body[0].decode("utf-8", "replace")}
            self.notices.append(notice)
            self._log(f"broker notice: {notice['notice']}")
        elif command == RESUME:
            # Replies were dropped while this client did not read them (§4.8.2): send again what
            # has no answer; finished tasks come back with their kept results.
            self._log(f"the broker dropped replies while this client did not read; resubmitting: "
                      f"{body[0].decode('utf-8', 'replace')}")
            self._resend_everything()
        elif command == ERROR and body[0] == b"unknown command 0xa":
            self._reads_taken = False    # a broker from before READ
        elif command == ERROR:
            text = body[0].decode("utf-8", "replace")
            self.errors.append(text)
            # An ERROR cannot be matched to a request in general (§9), but one naming HELLO while a
            # HELLO is outstanding answers it: a broker without HELLO (not version 3).
            if "HELLO" in text and any(f[1] == bytes([HELLO]) for f in self._outstanding):
                self._hello_replies.append(BrokerProtocolError(text))
                self._forget_request(HELLO, None)
            self._log(f"broker reported a protocol error: {text}")
        else:
            self._log(f"unexpected {COMMAND_NAMES.get(command, hex(command))} from the broker")

    def _broker_speaks_only_v2(self, frames: List[bytes]) -> bool:
        """An ERROR tagged CVY2 refusing our CVY3 means a version-2 broker (§13.3): speak version 2 from
        now on and send everything again, or, without ``fall_back``, report it."""
        if self.version != 3 or parse(frames, TAG_V2) is None or frames[1] != bytes([ERROR]):
            return False
        text = frames[2].decode("utf-8", "replace")
        if "CVY3" not in text:
            return False
        if not self.fall_back:
            self.errors.append(text)
            self._log(f"the broker speaks only protocol CVY2: {text}")
            return True
        self.fell_back = True
        self._log("the broker speaks only protocol CVY2; switching to it and sending everything again")
        self.version = 2
        self._outstanding = [f for f in self._outstanding if f[1] != bytes([HELLO])]
        self._resend_everything()
        return True

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
                self._unreported += sum(len(f) for f in frames)
                self._handle(frames)
        now = time.monotonic()
        if self.version == 3 and self._reads_taken and (
                self._unreported >= READ_REPORT_BYTES or now - self._last_read_report >= 1.0):
            self._report_read(str(self._unreported))
        if not self._pending and not self._outstanding:
            self._last_heard = now
            return
        if now - self._last_heard > self.heartbeat_interval * self.liveness:
            self._reconnect()
        elif now - self._last_sent >= self.heartbeat_interval:
            self._send([self.tag, bytes([HEARTBEAT])])

    def _watch_connection(self) -> None:
        from zmq.utils.monitor import recv_monitor_message
        while True:
            try:
                event = recv_monitor_message(self._monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if event["event"] == zmq.EVENT_CONNECTED:
                if self.version == 3 and self._reads_taken:
                    self._report_read("connected")
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

    def existing_id(self, task_id: str) -> Optional[str]:
        """The id of the task whose unique key the submit of ``task_id`` matched (the broker made no
        task ``task_id``; ask ``status`` and ``cancel`` about this one), once the broker said so;
        None otherwise."""
        return self._existing.get(task_id)

    def pending_ids(self) -> List[str]:
        return list(self._pending)

    # -- requests --

    def status(self, task_id: str, timeout: float = 10.0) -> StatusReport:
        raw = _identifier(task_id, "task id")
        replies = self._status_replies[task_id]
        self._request([self.tag, bytes([STATUS]), raw], lambda: bool(replies), timeout, f"STATUS {task_id}")
        return replies.popleft()

    def cancel(self, task_id: str, timeout: float = 10.0) -> str:
        """Asks the broker to cancel a task: "cancelled", "running", "done" or "unknown"."""
        raw = _identifier(task_id, "task id")
        replies = self._cancel_replies[task_id]
        self._request([self.tag, bytes([CANCEL]), raw], lambda: bool(replies), timeout, f"CANCEL {task_id}")
        return replies.popleft()

    def stats(self, timeout: float = 10.0) -> Dict[str, Any]:
        self._request([self.tag, bytes([STATS])], lambda: bool(self._stats_replies), timeout, "STATS")
        return self._stats_replies.popleft()

    def dead_letters(self, action: str, task_id: Optional[str] = None, timeout: float = 10.0) -> Dict[str, Any]:
        """Requeues (action "requeue") or purges ("purge") the dead letter ``task_id``, or all of them
        when it is None (§4.8). Answers {"action", "count"} or {"error"}. List them with ``stats()``."""
        raw = _identifier(task_id, "task id") if task_id else b""
        self._request([self.tag, bytes([DEAD_LETTERS]), action.encode("utf-8"), raw],
                      lambda: bool(self._dead_letter_replies), timeout, f"DEAD_LETTERS {action}")
        return self._dead_letter_replies.popleft()

    def pause(self, name: str, timeout: float = 10.0) -> Dict[str, Any]:
        """Pauses the task name ``name`` (§4.8.4, version 3): its tasks are accepted and queue, none
        starts until ``resume``. Answers {"action", "name", "paused", "changed", "queued", "running",
        "served"} or {"error"}."""
        return self._pause("pause", name, timeout)

    def resume(self, name: str, timeout: float = 10.0) -> Dict[str, Any]:
        """Resumes the task name ``name``: its queued tasks are dispatched at once (§4.8.4)."""
        return self._pause("resume", name, timeout)

    def _pause(self, action: str, name: str, timeout: float) -> Dict[str, Any]:
        if self.version != 3:
            raise ConveyorError("PAUSE is a version-3 command; this client speaks CVY2 now")
        self._request([self.tag, bytes([PAUSE]), action.encode("utf-8"), _identifier(name, "task name")],
                      lambda: bool(self._pause_replies), timeout, f"PAUSE {action}")
        return self._pause_replies.popleft()

    def limit(self, name: str, rate: Optional[float] = None, burst: Optional[int] = None,
              concurrency: Optional[int] = None, weight: Optional[int] = None, timeout: float = 10.0) -> Dict[str, Any]:
        """Sets global limits on the task name ``name`` (§4.8.5, version 3): ``rate`` dispatches per
        second with ``burst``, at most ``concurrency`` dispatched at once across every consumer, and
        a ``weight`` in the fair dispatch between names. The fields given replace those set before.
        Answers {"name", "changed", "limit", "queued", "served"} or {"error"}."""
        fields = {"rate": rate, "burst": burst, "concurrency": concurrency, "weight": weight}
        body = {"name": name, **{key: value for key, value in fields.items() if value is not None}}
        return self._admin(LIMIT, [json.dumps(body).encode("utf-8")], self._limit_replies, timeout)

    def clear_limit(self, name: str, timeout: float = 10.0) -> Dict[str, Any]:
        """Removes every limit of ``name`` (§4.8.5)."""
        return self._admin(LIMIT, [json.dumps({"name": name, "clear": True}).encode("utf-8")], self._limit_replies, timeout)

    def schedule_add(self, schedule_id: str, name: str, args: Any = None, every: Optional[int] = None,
                     cron: Optional[str] = None, timezone: Optional[str] = None, missed: Optional[str] = None,
                     priority: Optional[int] = None, timeout_ms: Optional[int] = None,
                     max_attempts: Optional[int] = None, timeout: float = 10.0) -> Dict[str, Any]:
        """Adds (or replaces) a periodic schedule in the broker (§4.8.6, docs/SCHEDULES.md): each
        tick of ``every`` seconds or of the ``cron`` expression (in ``timezone``) enqueues one task
        ``name(args)`` with the id ``sched:<id>:<tick seconds>``. Answers {"action", "schedules"}
        or {"error"}."""
        fields = {"every": every, "cron": cron, "timezone": timezone, "missed": missed, "priority": priority,
                  "timeout_ms": timeout_ms, "max_attempts": max_attempts}
        spec = {"id": schedule_id, "name": name, **{key: value for key, value in fields.items() if value is not None}}
        raw_args = json.dumps({} if args is None else args, separators=(",", ":")).encode("utf-8")
        return self._admin(SCHEDULE, [b"add", json.dumps(spec).encode("utf-8"), raw_args], self._schedule_replies, timeout)

    def schedule_list(self, timeout: float = 10.0) -> List[Dict[str, Any]]:
        """The broker's schedules, each with its args, last and next tick and counts (§4.8.6)."""
        reply = self._admin(SCHEDULE, [b"list", b"{}", b""], self._schedule_replies, timeout)
        if "error" in reply:
            raise ConveyorError(reply["error"])
        return reply.get("schedules", [])

    def schedule_remove(self, schedule_id: str, timeout: float = 10.0) -> Dict[str, Any]:
        """Removes a schedule; tasks it enqueued already stay (§4.8.6)."""
        body = json.dumps({"id": schedule_id}).encode("utf-8")
        return self._admin(SCHEDULE, [b"remove", body, b""], self._schedule_replies, timeout)

    def _admin(self, command: int, frames: List[bytes], replies: collections.deque, timeout: float) -> Dict[str, Any]:
        if self.version != 3:
            raise ConveyorError(f"{COMMAND_NAMES[command]} is a version-3 command; this client speaks CVY2 now")
        self._request([self.tag, bytes([command]), *frames], lambda: bool(replies), timeout, COMMAND_NAMES[command])
        return replies.popleft()

    def ping(self, timeout: float = 10.0) -> float:
        """A HEARTBEAT round trip, in seconds."""
        start, before = time.monotonic(), self._heartbeat_replies
        self._request([self.tag, bytes([HEARTBEAT])], lambda: self._heartbeat_replies > before, timeout, "HEARTBEAT")
        return time.monotonic() - start

    def hello(self, capabilities: Sequence[str] = (), timeout: float = 10.0) -> Dict[str, Any]:
        """Says HELLO (§5.5, optional) and returns the broker's: its versions, capabilities and
        limits. Raises ``ConveyorError`` when this client speaks version 2, which has no HELLO."""
        if self.version != 3:
            raise ConveyorError("HELLO is a version-3 command; this client speaks CVY2 now")
        body = hello_body("producer", (2, 3), capabilities, SOFTWARE)
        self._request([self.tag, bytes([HELLO]), body], lambda: bool(self._hello_replies), timeout, "HELLO")
        reply = self._hello_replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        return reply


