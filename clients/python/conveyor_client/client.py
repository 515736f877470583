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
HELLO, status, cancel, resubmission and stats, prints a summary, and exits 0 only if everything was
right. With --raw-checks it instead sends malformed messages and checks the broker's answers
(protocol version mismatch, unknown command, short SUBMIT group, malformed packed frames, unknown
and critical options, a version-2 peer, garbage without the tag). With --self-test it checks its
own encoders against the golden bytes that the Swift tests pin, without a broker.

It speaks protocol version 3 (CVY3) by default, and version 2 (CVY2) with protocol=2; a client of
version 3 that finds a version-2 broker switches to version 2 by itself (PROTOCOL.md §13).
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
except ImportError as _zmq_error:  # pragma: no cover - reported when a socket is needed
    zmq = None
    _ZMQ_IMPORT_ERROR = _zmq_error


def _require_zmq() -> None:
    if zmq is None:
        sys.stderr.write(f"error: the Python module 'zmq' (pyzmq) is not available ({_ZMQ_IMPORT_ERROR}); "
                         "install it with: pip install pyzmq\n")
        sys.exit(3)

# --- Protocol constants (docs/PROTOCOL.md §2, §3) ---------------------------------------------

TAG = b"CVY3"                        # this client's protocol version (§2)
TAG_V2 = b"CVY2"                     # the previous version, which brokers still serve (§13)
TAGS = {3: TAG, 2: TAG_V2}

SUBMIT, CANCEL, STATUS, STATS, HEARTBEAT, DISCONNECT, DEAD_LETTERS = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07
HELLO = 0x08                         # version 3 only (§5.5)
READ, RESUME = 0x0A, 0x19            # version 3 only: the budget of unread bytes (§4.8.2)
NOTICE = 0x1A                        # version 3 only: e.g. no consumer serves a task's name (§6.1)
READ_REPORT_BYTES = 1 << 20          # report what was read once this much is read (and every second)
ACCEPTED, REJECTED, RESULT, CANCEL_REPLY, STATUS_REPLY, STATS_REPLY = 0x11, 0x12, 0x13, 0x14, 0x15, 0x16
DEAD_LETTERS_REPLY = 0x17
ERROR = 0x1F
READY, DISPATCH, DONE = 0x21, 0x22, 0x23

COMMAND_NAMES = {
    SUBMIT: "SUBMIT", CANCEL: "CANCEL", STATUS: "STATUS", STATS: "STATS", HEARTBEAT: "HEARTBEAT",
    DISCONNECT: "DISCONNECT", DEAD_LETTERS: "DEAD_LETTERS", DEAD_LETTERS_REPLY: "DEAD_LETTERS_REPLY", ACCEPTED: "ACCEPTED", REJECTED: "REJECTED", RESULT: "RESULT",
    CANCEL_REPLY: "CANCEL_REPLY", STATUS_REPLY: "STATUS_REPLY", STATS_REPLY: "STATS_REPLY", ERROR: "ERROR",
    READY: "READY", DISPATCH: "DISPATCH", DONE: "DONE", HELLO: "HELLO", READ: "READ", RESUME: "RESUME", NOTICE: "NOTICE",
}
# Body: ("packed", k) for one packed frame holding one or more groups of k fields (§2.1),
# ("fixed", n) for exactly n frames.
BODY_SHAPE = {
    SUBMIT: ("packed", 4), RESULT: ("packed", 4), DISPATCH: ("packed", 4), DONE: ("packed", 4),
    REJECTED: ("packed", 2), ACCEPTED: ("packed", 1),
    CANCEL: ("fixed", 1), STATUS: ("fixed", 1), READY: ("fixed", 1), STATS_REPLY: ("fixed", 1),
    ERROR: ("fixed", 1), STATS: ("fixed", 0), HEARTBEAT: ("fixed", 0), DISCONNECT: ("fixed", 0),
    CANCEL_REPLY: ("fixed", 2), STATUS_REPLY: ("fixed", 5),
    DEAD_LETTERS: ("fixed", 2), DEAD_LETTERS_REPLY: ("fixed", 1), HELLO: ("fixed", 1),
    READ: ("fixed", 1), RESUME: ("fixed", 1), NOTICE: ("fixed", 1),
}

MAX_IDENTIFIER_BYTES = 255
MAX_GROUPS = 65_536                  # groups in one packed frame, at most (§2.1)
PACKED_MESSAGE_TARGET = 1 << 20      # stop adding groups to a message once its packed frame passes this (§7)

_LENGTH = struct.Struct(">I")

# --- Tagged fields (§6.1): the version-3 options and dispatch meta ------------------------------

CRITICAL = 0x8000                    # the tag's top bit: understand this field or refuse the task
OPT_TIMEOUT, OPT_PRIORITY, OPT_MAX_ATTEMPTS, OPT_RETRY_BACKOFF = 0x0001, 0x0002, 0x0003, 0x0004
# Reserved for the next versions (a broker of this version rejects them when sent critical):
OPT_NOT_BEFORE, OPT_UNIQUE_KEY, OPT_WORKFLOW_PARENT = 0x0005, 0x0006, 0x0007
OPT_CANCEL_ON_DISCONNECT, OPT_TRACEPARENT, OPT_TRACESTATE = 0x0008, 0x0009, 0x000A
META_ATTEMPT, META_TIMEOUT = 0x0001, 0x0002
_FIELD_HEADER = struct.Struct(">HH")


def pack_tagged(fields: Iterable[Tuple[int, bytes]]) -> bytes:
    """Tagged fields (§6.1): each a u16 tag, a u16 length and the value, big-endian."""
    out = []
    for tag, value in fields:
        if not 0 <= tag <= 0xFFFF or len(value) > 0xFFFF:
            raise ValueError(f"tag {tag:#06x} or its {len(value)}-byte value does not fit a tagged field")
        out.append(_FIELD_HEADER.pack(tag, len(value)) + value)
    return b"".join(out)


def unpack_tagged(data: bytes) -> List[Tuple[int, bytes]]:
    """The (tag, value) pairs of a tagged-field run; ValueError for a header cut short or a value that
    runs past the end."""
    fields, offset, end = [], 0, len(data)
    while offset < end:
        if end - offset < 4:
            raise ValueError(f"{end - offset} bytes left at offset {offset}, too few for a field header (4)")
        tag, length = _FIELD_HEADER.unpack_from(data, offset)
        offset += 4
        if length > end - offset:
            raise ValueError(f"field {tag:#06x} claims {length} bytes; {end - offset} are left")
        fields.append((tag, bytes(data[offset:offset + length])))
        offset += length
    return fields


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


def parse(frames: Sequence[bytes], tag: bytes = TAG) -> Optional[Tuple[int, List[bytes]]]:
    """A received message checked as PROTOCOL.md §2 says: (command, body), where the body of a group
    command is the fields of its packed frame, group after group. None if the message is malformed,
    carries another tag than ``tag``, or a command this client does not know (§9.1: dropped)."""
    if len(frames) < 2 or frames[0] != tag or len(frames[1]) != 1:
        return None
    command = frames[1][0]
    shape = BODY_SHAPE.get(command)
    if shape is None or (command == HELLO and tag == TAG_V2):
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
    """The options field of SUBMIT: tagged fields in version 3 (PROTOCOL.md §6.1), 16 bytes in
    version 2 (§13.2). ``extra`` holds further (tag, value) fields to send as they are, e.g. a
    trace context (0x0009) or an option of a newer broker (set the CRITICAL bit if it must not be
    ignored)."""
    timeout_ms: int = 300_000
    priority: int = 0
    max_attempts: int = 1
    retry_backoff_ms: int = 1_000
    extra: Tuple[Tuple[int, bytes], ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.timeout_ms <= 0xFFFFFFFF:
            raise ValueError("timeout_ms must be 1 to 2**32-1")
        if not -2**31 <= self.priority < 2**31:
            raise ValueError("priority must fit in a signed 32-bit integer")
        if not 0 <= self.max_attempts <= 0xFFFFFFFF or not 0 <= self.retry_backoff_ms <= 0xFFFFFFFF:
            raise ValueError("max_attempts and retry_backoff_ms must fit in an unsigned 32-bit integer")

    def encode(self, version: int = 3) -> bytes:
        """The options field in ``version``'s encoding. Version 3: each option that differs from its
        default as a plain tagged field, in number order, then ``extra``; so the defaults are empty.
        Version 2: empty for the defaults, 16 big-endian bytes otherwise (``extra`` cannot be sent)."""
        if version == 2:
            if self.extra:
                raise ValueError("a version-2 options field cannot carry extra tagged fields")
            if self == DEFAULT_OPTIONS:
                return b""
            return struct.pack(">IiII", self.timeout_ms, self.priority, self.max_attempts, self.retry_backoff_ms)
        fields = []
        if self.timeout_ms != 300_000:
            fields.append((OPT_TIMEOUT, struct.pack(">I", self.timeout_ms)))
        if self.priority != 0:
            fields.append((OPT_PRIORITY, struct.pack(">i", self.priority)))
        if self.max_attempts != 1:
            fields.append((OPT_MAX_ATTEMPTS, struct.pack(">I", self.max_attempts)))
        if self.retry_backoff_ms != 1_000:
            fields.append((OPT_RETRY_BACKOFF, struct.pack(">I", self.retry_backoff_ms)))
        return pack_tagged(fields + list(self.extra))

    @staticmethod
    def decode(data: bytes, version: int = 3) -> "TaskOptions":
        """Reads an options field as a broker does (§6.1): unknown plain fields skipped, the last of a
        repeated option wins; ValueError for a malformed field or an unknown critical one."""
        if version == 2:
            if not data:
                return DEFAULT_OPTIONS
            if len(data) != 16:
                raise ValueError(f"options frame has {len(data)} bytes; expected 0 or 16")
            return TaskOptions(*struct.unpack(">IiII", data))
        values = {}
        for tag, value in unpack_tagged(data):
            number = tag & ~CRITICAL
            if number in (OPT_TIMEOUT, OPT_PRIORITY, OPT_MAX_ATTEMPTS, OPT_RETRY_BACKOFF):
                if len(value) != 4:
                    raise ValueError(f"option {tag:#06x} has {len(value)} bytes; expected 4")
                values[number] = value
            elif tag & CRITICAL:
                raise ValueError(f"field {tag:#06x} is marked critical and is not supported")
        get = lambda number, fmt, default: struct.unpack(fmt, values[number])[0] if number in values else default
        return TaskOptions(get(OPT_TIMEOUT, ">I", 300_000), get(OPT_PRIORITY, ">i", 0),
                           max(1, get(OPT_MAX_ATTEMPTS, ">I", 1)), get(OPT_RETRY_BACKOFF, ">I", 1_000))


DEFAULT_OPTIONS = TaskOptions()


def decode_dispatch_meta(data: bytes, version: int = 3) -> Tuple[int, int]:
    """A DISPATCH meta field (§6.2) as (attempt, timeout_ms), for consumers written from this file."""
    if version == 2:
        if len(data) != 8:
            raise ValueError(f"dispatch meta frame has {len(data)} bytes; expected 8")
        return struct.unpack(">II", data)
    values = {}
    for tag, value in unpack_tagged(data):
        number = tag & ~CRITICAL
        if number in (META_ATTEMPT, META_TIMEOUT):
            if len(value) != 4:
                raise ValueError(f"meta field {tag:#06x} has {len(value)} bytes; expected 4")
            values[number] = struct.unpack(">I", value)[0]
        elif tag & CRITICAL:
            raise ValueError(f"field {tag:#06x} is marked critical and is not supported")
    if META_ATTEMPT not in values or META_TIMEOUT not in values:
        raise ValueError("dispatch meta lacks attempt or timeout_ms")
    return values[META_ATTEMPT], values[META_TIMEOUT]


# Result statuses and task states this version knows; a receiver maps any other word to
# "not ok" / "held, not finished" and keeps it as it came (§6.4, §4.6).
KNOWN_STATUSES = ("ok", "error", "timeout", "cancelled")
KNOWN_STATES = ("queued", "running", "done", "unknown")


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
    state: str  # queued, running, done, unknown; or a newer broker's word (§4.6)
    result: Optional[Result]

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
        self._status_replies: Dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._cancel_replies: Dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._stats_replies: collections.deque = collections.deque()
        self._dead_letter_replies: collections.deque = collections.deque()
        self._heartbeat_replies = 0
        self._hello_replies: collections.deque = collections.deque()
        self._outstanding: List[List[bytes]] = []        # status/cancel/stats requests awaiting replies
        self.errors: List[str] = []                      # ERROR texts received
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
                self._log(f"broker notice: {json.loads(body[0])['notice']}")
            except (ValueError, KeyError, TypeError):
                self._log(f"broker notice: {body[0].decode('utf-8', 'replace')}")
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
        body = json.dumps({"capabilities": list(capabilities), "role": "producer",
                           "software": "conveyor-python-example", "versions": [2, 3]},
                          separators=(",", ":"), sort_keys=True).encode()
        self._request([self.tag, bytes([HELLO]), body], lambda: bool(self._hello_replies), timeout, "HELLO")
        reply = self._hello_replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        return reply


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
    with Client(args.broker, protocol=args.protocol) as client:
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
                if client.version == 3:
                    try:
                        hello = client.hello(timeout=min(left(), 10))
                    except (BrokerProtocolError, BrokerTimeout) as error:
                        hello = {"error": str(error)}
                    checker.check(hello.get("role") == "broker" and 3 in hello.get("versions", []),
                                  f"HELLO is answered with the broker's versions and capabilities ({hello})")
                    client.errors.clear()
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
                # Resubmitting a held id with its name and args is the same task: accepted, and its
                # kept result comes again (other args would be rejected: another task, §8.1).
                again = client.submit_many([(expected[first][0], expected[first][1], None, first)])[0]
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
        # The broker answers in the version of the message when it speaks it, else in its newest (§9).
        answer_tag = frames[0] if frames and frames[0] in TAGS.values() else TAG
        ok = (len(reply) == 3 and reply[0] == answer_tag and reply[1] == bytes([ERROR])
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
                     ["CVY9", "CVY3", "CVY2"], "wrong protocol version tag CVY9")
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
        # Version 3's rules for what a peer does not know (§9.1, §13).
        expect_error([b"CVY4", bytes([STATS])], ["unsupported protocol", "CVY4", "CVY3"], "a newer version's tag CVY4")
        expect_error([TAG, bytes([0x30])], ["unknown command 0x30"], "a command byte of a later version (0x30)")
        expect_error([TAG_V2, bytes([HELLO]), b'{"role":"producer","versions":[2]}'], ["unknown command 0x8"],
                     "HELLO under the CVY2 tag, where it does not exist")

        for garbage in ([b"hello", b"world"], [b"\x00\xffgarbage"], [b"", bytes([SUBMIT])],
                        [b"GET / HTTP/1.1\r\n\r\n"]):
            sock.send_multipart(garbage)
        silent = receive(1.0)
        checker.check(silent is None, "garbage without the tag gets no reply" if silent is None
                      else f"garbage without the tag gets no reply (got {[f[:80] for f in silent]})")

        run_version3_checks(sock, receive, checker, run, reply_wait)

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
        # Fourteen messages failed the envelope checks (the READY is well formed, so not counted), plus four garbage.
        sent_bad = 14 + 4
        checker.check(before is not None and after is not None and after - before >= sent_bad,
                      f"STATS counts the bad messages (bad_messages {before} -> {after}, at least +{sent_bad})")
    finally:
        sock.close(linger=0)

    total = checker.passed + len(checker.failed)
    print(f"summary: {checker.passed}/{total} raw checks passed", flush=True)
    print("ALL OK" if not checker.failed else "FAILED", flush=True)
    return 0 if not checker.failed else 1


def run_version3_checks(sock, receive, checker: "Checker", run: str, reply_wait: float) -> None:
    """HELLO, the tagged options' rules for unknown and critical fields, and a version-2 peer served
    in its own version (PROTOCOL.md §5.5, §6.1, §13)."""
    hello = json.dumps({"capabilities": [], "role": "producer", "versions": [2, 3]}, separators=(",", ":")).encode()
    sock.send_multipart([TAG, bytes([HELLO]), hello])
    reply = receive(reply_wait)
    parsed = parse(reply) if reply is not None else None
    body = None
    if parsed and parsed[0] == HELLO:
        try:
            body = json.loads(parsed[1][0])
        except ValueError:
            body = None
    checker.check(isinstance(body, dict) and body.get("role") == "broker" and 3 in body.get("versions", [])
                  and 2 in body.get("versions", []) and isinstance(body.get("capabilities", []), list),
                  f"HELLO is answered with the broker's HELLO, versions 2 and 3 ({body if body is not None else reply})")

    def ids(suffix: str) -> bytes:
        return f"raw-{run}-{suffix}".encode()

    plain = pack_tagged([(0x0123, b"from a newer client"), (OPT_TIMEOUT, struct.pack(">I", 20_000)),
                         (OPT_TRACEPARENT, b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
    critical = pack_tagged([(OPT_TIMEOUT, struct.pack(">I", 20_000)), (0x8123, b"")])
    not_before = pack_tagged([(OPT_NOT_BEFORE | CRITICAL, struct.pack(">Q", int(time.time() * 1000) + 60_000))])
    sock.send_multipart([TAG, bytes([SUBMIT]), pack_fields(
        [ids("plain"), b"echo", plain, b'{"plain":1}', ids("critical"), b"echo", critical, b"2",
         ids("not-before"), b"echo", not_before, b"3"])])
    # A version-2 peer on the same broker: 16-byte options, and every answer tagged CVY2.
    v2_options = TaskOptions(timeout_ms=20_000, priority=1).encode(2)
    sock.send_multipart([TAG_V2, bytes([SUBMIT]), pack_fields([ids("v2"), b"echo", v2_options, b'{"v2":true}'])])

    seen: Dict[Tuple[bytes, str], Any] = {}
    deadline = time.monotonic() + reply_wait
    wanted = {(ids("plain"), "accepted"), (ids("plain"), "result"), (ids("critical"), "rejected"),
              (ids("not-before"), "rejected"), (ids("v2"), "accepted"), (ids("v2"), "result")}
    while time.monotonic() < deadline and not wanted.issubset(seen):
        message = receive(max(0.01, deadline - time.monotonic()))
        if message is None:
            break
        for tag in (TAG, TAG_V2):
            parsed = parse(message, tag)
            if parsed is None:
                continue
            command, fields = parsed
            if command == ACCEPTED:
                for task_id in fields:
                    seen[(task_id, "accepted")] = tag
            elif command == REJECTED:
                for i in range(0, len(fields), 2):
                    seen[(fields[i], "rejected")] = (tag, fields[i + 1].decode("utf-8", "replace"))
            elif command == RESULT:
                for i in range(0, len(fields), 4):
                    seen[(fields[i], "result")] = (tag, fields[i + 1], fields[i + 2])
    result = seen.get((ids("plain"), "result"))
    checker.check(seen.get((ids("plain"), "accepted")) == TAG and result is not None and result[1] == b"ok",
                  f"unknown plain options (0x0123, traceparent) are skipped: accepted and run ({result})")
    rejected = seen.get((ids("critical"), "rejected"))
    checker.check(rejected is not None and "0x8123" in rejected[1] and "critical" in rejected[1],
                  f"an unknown critical option is REJECTED naming its tag ({rejected})")
    rejected = seen.get((ids("not-before"), "rejected"))
    checker.check(rejected is not None and "0x8005" in rejected[1] and "not_before" in rejected[1],
                  f"the reserved not_before option sent critical is REJECTED by name ({rejected})")
    result = seen.get((ids("v2"), "result"))
    checker.check(seen.get((ids("v2"), "accepted")) == TAG_V2 and result is not None and result[0] == TAG_V2
                  and result[1] == b"ok" and json.loads(result[2]) == {"v2": True},
                  f"a CVY2 SUBMIT with 16-byte options is served in CVY2: ACCEPTED and RESULT tagged CVY2 "
                  f"({seen.get((ids('v2'), 'accepted'))}, {result})")
    sock.send_multipart([TAG_V2, bytes([STATUS]), ids("v2")])
    reply = receive(reply_wait)
    parsed = parse(reply, TAG_V2) if reply is not None else None
    checker.check(parsed is not None and parsed[0] == STATUS_REPLY and parsed[1][1] == b"done",
                  f"a CVY2 STATUS gets a CVY2 STATUS_REPLY ({[f[:40] for f in reply] if reply else None})")


def self_test() -> int:
    """Checks this file's encoders against the golden bytes of PROTOCOL.md §6 and §5.5, which
    Tests/ProtocolTests pins on the Swift side too, without a broker or pyzmq. When the Swift test
    runs this, it also passes its own encodings in CONVEYOR_GOLDEN_* variables to compare with."""
    checker = Checker()
    full = TaskOptions(timeout_ms=30_000, priority=-2, max_attempts=3, retry_backoff_ms=500)
    full_v3 = bytes.fromhex("0001000400007530" "00020004fffffffe" "0003000400000003" "00040004000001f4")
    checker.check(full.encode(3) == full_v3, "options, version 3: tagged fields in number order (§6.1)")
    checker.check(full.encode(2) == bytes.fromhex("00007530fffffffe00000003000001f4"), "options, version 2: 16 bytes (§13.2)")
    checker.check(TaskOptions(timeout_ms=5000).encode(3) == bytes.fromhex("0001000400001388"),
                  "the worked example's options: only the timeout (§11)")
    checker.check(DEFAULT_OPTIONS.encode(3) == b"" and DEFAULT_OPTIONS.encode(2) == b"", "the defaults are an empty field")
    checker.check(TaskOptions.decode(full_v3) == full and TaskOptions.decode(full.encode(2), 2) == full,
                  "both encodings decode back")
    skipped = pack_tagged([(0x0042, b"x" * 300), (OPT_TIMEOUT, struct.pack(">I", 1234))])
    checker.check(TaskOptions.decode(skipped) == TaskOptions(timeout_ms=1234), "an unknown plain option is skipped")
    repeated = pack_tagged([(OPT_TIMEOUT, struct.pack(">I", 1000)), (OPT_TIMEOUT, struct.pack(">I", 2000))])
    checker.check(TaskOptions.decode(repeated).timeout_ms == 2000, "the last of a repeated option wins")
    for bad, what in ((pack_tagged([(0x8042, b"")]), "an unknown critical option"), (b"\x00\x01\x00", "a header cut short"),
                      (b"\x00\x01\x00\x04\x00", "a value running past the end"),
                      (pack_tagged([(OPT_TIMEOUT, b"\x00\x00")]), "a known option of the wrong length")):
        try:
            TaskOptions.decode(bad)
            checker.check(False, f"{what} is refused")
        except ValueError as error:
            checker.check(True, f"{what} is refused ({error})")
    meta = bytes.fromhex("0001000400000002" "000200040000e966")
    checker.check(decode_dispatch_meta(meta) == (2, 59_750) and decode_dispatch_meta(bytes.fromhex("000000020000e966"), 2) == (2, 59_750),
                  "dispatch meta in both versions (§6.2)")
    hello = json.dumps({"capabilities": [], "role": "producer", "software": "conveyor-swift", "versions": [2, 3]},
                       separators=(",", ":"), sort_keys=True)
    checker.check(hello == '{"capabilities":[],"role":"producer","software":"conveyor-swift","versions":[2,3]}',
                  "a HELLO body: JSON, keys sorted, no spaces (§5.5)")
    # The Swift side's own encodings, when the Swift test passes them.
    golden = {name: os.environ.get(f"CONVEYOR_GOLDEN_{name}") for name in ("OPTIONS_V3", "OPTIONS_V2", "META_V3", "HELLO")}
    if all(value is not None for value in golden.values()):
        checker.check(full.encode(3).hex() == golden["OPTIONS_V3"], "the Swift encoder's version-3 options bytes are ours")
        checker.check(full.encode(2).hex() == golden["OPTIONS_V2"], "the Swift encoder's version-2 options bytes are ours")
        checker.check(decode_dispatch_meta(bytes.fromhex(golden["META_V3"])) == (2, 59_750), "the Swift encoder's dispatch meta decodes here")
        checker.check(golden["HELLO"] == hello, "the Swift HELLO body is ours byte for byte")
    total = checker.passed + len(checker.failed)
    print(f"summary: {checker.passed}/{total} self-test checks passed", flush=True)
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
    parser.add_argument("--self-test", action="store_true",
                        help="check the encoders against the golden bytes of PROTOCOL.md, without a broker")
    parser.add_argument("--protocol", type=int, choices=sorted(TAGS), default=3,
                        help="the protocol version to speak (default 3)")
    args = parser.parse_args(argv)
    if args.self_test:
        return self_test()
    _require_zmq()
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
