"""The wire protocol of Conveyor, versions 3 (CVY3) and 2 (CVY2), as docs/PROTOCOL.md describes it.

Everything here is pure encoding and decoding, with no sockets and no pyzmq: the frames of a
message (``parse``), the packed frame of a group command (``pack_fields`` / ``unpack_fields``,
§2.1), tagged fields (``pack_tagged`` / ``unpack_tagged``, §6.1), task options (``TaskOptions``)
and dispatch meta (``decode_dispatch_meta``, §6.2).
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Iterable, List, Optional, Sequence, Tuple

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
PAUSE, PAUSE_REPLY = 0x0C, 0x1C        # version 3 only, capability "pause" (§4.8.4)
SCHEDULE, SCHEDULE_REPLY = 0x0D, 0x1D  # version 3 only, capability "schedules" (§4.8.6)
LIMIT, LIMIT_REPLY = 0x0E, 0x1E        # version 3 only, capability "limits" (§4.8.5)
ERROR = 0x1F
READY, DISPATCH, DONE = 0x21, 0x22, 0x23

COMMAND_NAMES = {
    SUBMIT: "SUBMIT", CANCEL: "CANCEL", STATUS: "STATUS", STATS: "STATS", HEARTBEAT: "HEARTBEAT",
    DISCONNECT: "DISCONNECT", DEAD_LETTERS: "DEAD_LETTERS", DEAD_LETTERS_REPLY: "DEAD_LETTERS_REPLY", ACCEPTED: "ACCEPTED", REJECTED: "REJECTED", RESULT: "RESULT",
    CANCEL_REPLY: "CANCEL_REPLY", STATUS_REPLY: "STATUS_REPLY", STATS_REPLY: "STATS_REPLY", ERROR: "ERROR",
    READY: "READY", DISPATCH: "DISPATCH", DONE: "DONE", HELLO: "HELLO", READ: "READ", RESUME: "RESUME", NOTICE: "NOTICE",
    PAUSE: "PAUSE", PAUSE_REPLY: "PAUSE_REPLY", SCHEDULE: "SCHEDULE", SCHEDULE_REPLY: "SCHEDULE_REPLY",
    LIMIT: "LIMIT", LIMIT_REPLY: "LIMIT_REPLY",
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
    PAUSE: ("fixed", 2), PAUSE_REPLY: ("fixed", 1), SCHEDULE: ("fixed", 3), SCHEDULE_REPLY: ("fixed", 1),
    LIMIT: ("fixed", 1), LIMIT_REPLY: ("fixed", 1),
}

MAX_IDENTIFIER_BYTES = 255
MAX_GROUPS = 65_536                  # groups in one packed frame, at most (§2.1)
PACKED_MESSAGE_TARGET = 1 << 20      # stop adding groups to a message once its packed frame passes this (§7)

_LENGTH = struct.Struct(">I")

# --- Tagged fields (§6.1): the version-3 options and dispatch meta ------------------------------

CRITICAL = 0x8000                    # the tag's top bit: understand this field or refuse the task
OPT_TIMEOUT, OPT_PRIORITY, OPT_MAX_ATTEMPTS, OPT_RETRY_BACKOFF = 0x0001, 0x0002, 0x0003, 0x0004
# Sent critical: run at (u64 ms since the epoch), a uniqueness key (visible ASCII), and how long a
# finished task keeps its key (u32 ms) (TaskOptions.not_before, .unique_key, .unique_ttl_ms; §8.12).
OPT_NOT_BEFORE, OPT_UNIQUE_KEY, OPT_UNIQUE_TTL = 0x0005, 0x0006, 0x000D
# Reserved for the next versions (a broker of this version rejects it when sent critical):
OPT_WORKFLOW_PARENT = 0x0007
OPT_CANCEL_ON_DISCONNECT = 0x0008
# W3C Trace Context, text values sent plain (TaskOptions.traceparent and .tracestate):
OPT_TRACEPARENT, OPT_TRACESTATE = 0x0009, 0x000A
# Empty value, sent critical: reject the task at once when no connected consumer serves its name.
OPT_REQUIRE_CONSUMER = 0x000B
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


def hello_body(role: str = "producer", versions: Sequence[int] = (2, 3), capabilities: Sequence[str] = (),
               software: Optional[str] = None) -> bytes:
    """The body of a HELLO (§5.5): one JSON object, keys sorted, no spaces, as the Swift side writes it."""
    body = {"capabilities": list(capabilities), "role": role, "versions": list(versions)}
    if software is not None:
        body["software"] = software
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")



_TRACE_FORM = ("expected version-traceid-parentid-flags in lowercase hex (2, 32, 16 and 2 digits), "
               "e.g. 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
_HEX = frozenset(b"0123456789abcdef")


def traceparent_problem(value: bytes) -> Optional[str]:
    """Why ``value`` is not a W3C traceparent as Conveyor carries it (§6.1), or None when it is:
    version-traceid-parentid-flags in lowercase hex, 55 characters for version 00; a later version
    may go on after a '-' (at most 255 characters); ids not all zeros, version not ff."""
    count = len(value)
    if count < 55:
        return f"it has {count} characters; version 00 has 55: {_TRACE_FORM}"
    if count > 255:
        return f"it has {count} characters; at most 255 are carried"
    for offset in range(55):
        if offset in (2, 35, 52):
            if value[offset] != ord("-"):
                return f"character {offset + 1} is not '-': {_TRACE_FORM}"
        elif value[offset] not in _HEX:
            return f"character {offset + 1} is not a lowercase hex digit: {_TRACE_FORM}"
    if value[:2] == b"ff":
        return "version ff is invalid"
    if value[:2] == b"00" and count != 55:
        return f"it has {count} characters; version 00 has 55: {_TRACE_FORM}"
    if count > 55 and value[55] != ord("-"):
        return "character 56 is not '-' (a later version's fields follow the 55 characters of version 00)"
    if value[3:35] == b"0" * 32:
        return "its trace id is all zeros"
    if value[36:52] == b"0" * 16:
        return "its parent id is all zeros"
    return None


def tracestate_problem(value: bytes) -> Optional[str]:
    """Why ``value`` is not a W3C tracestate as Conveyor carries it (§6.1): 1 to 512 bytes of
    printable ASCII, space and tab included; None when it is."""
    if not value:
        return "it is empty (leave it out instead)"
    if len(value) > 512:
        return f"it has {len(value)} bytes; at most 512 are carried"
    for offset, byte in enumerate(value):
        if not (0x20 <= byte <= 0x7E or byte == 0x09):
            return f"byte {offset + 1} ({byte:#x}) is not printable ASCII"
    return None


@dataclass(frozen=True)
class TaskOptions:
    """The options field of SUBMIT: tagged fields in version 3 (PROTOCOL.md §6.1), 16 bytes in
    version 2 (§13.2). ``traceparent`` and ``tracestate`` are a W3C trace context (a web request's
    headers), handed to the task's handler and logged with it; version 2 cannot carry them.
    ``extra`` holds further (tag, value) fields to send as they are, e.g. an option of a newer
    broker (set the CRITICAL bit if it must not be ignored). ``not_before`` (ms since the Unix
    epoch) makes the task wait at the broker until then; ``unique_key`` (1-255 bytes of visible
    ASCII) lets at most one task of a name hold the key, kept ``unique_ttl_ms`` after it finishes
    (§8.12). Version 2 cannot carry these three."""
    timeout_ms: int = 300_000
    priority: int = 0
    max_attempts: int = 1
    retry_backoff_ms: int = 1_000
    extra: Tuple[Tuple[int, bytes], ...] = ()
    traceparent: Optional[str] = None
    tracestate: Optional[str] = None
    not_before: Optional[int] = None
    unique_key: Optional[str] = None
    unique_ttl_ms: int = 0

    def __post_init__(self) -> None:
        if self.not_before is not None and not 0 <= self.not_before < 2**64:
            raise ValueError("not_before must be milliseconds since the Unix epoch, 0 to 2**64-1")
        if self.unique_key is not None:
            raw = self.unique_key.encode("utf-8")
            if not 1 <= len(raw) <= 255 or any(not 0x21 <= byte <= 0x7E for byte in raw):
                raise ValueError(f"unique_key {self.unique_key[:80]!r} must be 1-255 bytes of visible ASCII (no spaces)")
        if not 0 <= self.unique_ttl_ms <= 0xFFFFFFFF:
            raise ValueError("unique_ttl_ms must fit in an unsigned 32-bit integer")
        if self.unique_ttl_ms and self.unique_key is None:
            raise ValueError("unique_ttl_ms is given without a unique_key: pass both or neither")
        if not 0 < self.timeout_ms <= 0xFFFFFFFF:
            raise ValueError("timeout_ms must be 1 to 2**32-1")
        if not -2**31 <= self.priority < 2**31:
            raise ValueError("priority must fit in a signed 32-bit integer")
        if not 0 <= self.max_attempts <= 0xFFFFFFFF or not 0 <= self.retry_backoff_ms <= 0xFFFFFFFF:
            raise ValueError("max_attempts and retry_backoff_ms must fit in an unsigned 32-bit integer")
        if self.traceparent is not None:
            problem = traceparent_problem(self.traceparent.encode("utf-8"))
            if problem:
                raise ValueError(f"traceparent {self.traceparent[:80]!r} is not a W3C traceparent: {problem}; "
                                 "pass the incoming request's traceparent header unchanged, or none")
        if self.tracestate is not None:
            if self.traceparent is None:
                raise ValueError("tracestate is given without a traceparent: W3C tracestate goes only with a "
                                 "traceparent; pass both or neither")
            problem = tracestate_problem(self.tracestate.encode("utf-8"))
            if problem:
                raise ValueError(f"tracestate {self.tracestate[:80]!r} is not a W3C tracestate: {problem}; "
                                 "pass the incoming request's tracestate header unchanged, or none")

    def encode(self, version: int = 3) -> bytes:
        """The options field in ``version``'s encoding. Version 3: each option that differs from its
        default as a plain tagged field, in number order, then ``extra``; so the defaults are empty.
        Version 2: empty for the defaults, 16 big-endian bytes otherwise (``extra`` cannot be sent,
        and the trace context is left out, as the Swift producer does)."""
        if version == 2:
            if self.extra:
                raise ValueError("a version-2 options field cannot carry extra tagged fields")
            if self.not_before is not None or self.unique_key is not None:
                raise ValueError("a version-2 options field cannot carry not_before or unique_key")
            if (self.timeout_ms, self.priority, self.max_attempts, self.retry_backoff_ms) == (300_000, 0, 1, 1_000):
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
        if self.not_before is not None:
            fields.append((OPT_NOT_BEFORE | CRITICAL, struct.pack(">Q", self.not_before)))
        if self.unique_key is not None:
            fields.append((OPT_UNIQUE_KEY | CRITICAL, self.unique_key.encode("ascii")))
        if self.traceparent is not None:
            fields.append((OPT_TRACEPARENT, self.traceparent.encode("ascii")))
        if self.tracestate is not None:
            fields.append((OPT_TRACESTATE, self.tracestate.encode("ascii")))
        if self.unique_ttl_ms:
            fields.append((OPT_UNIQUE_TTL | CRITICAL, struct.pack(">I", self.unique_ttl_ms)))
        return pack_tagged(fields + list(self.extra))

    @staticmethod
    def decode(data: bytes, version: int = 3) -> "TaskOptions":
        """Reads an options field as a broker does (§6.1): unknown plain fields skipped, the last of a
        repeated option wins; a plain trace context field that is not valid is dropped (sent critical,
        it is malformed); ValueError for a malformed field or an unknown critical one."""
        if version == 2:
            if not data:
                return DEFAULT_OPTIONS
            if len(data) != 16:
                raise ValueError(f"options frame has {len(data)} bytes; expected 0 or 16")
            return TaskOptions(*struct.unpack(">IiII", data))
        values = {}
        for tag, value in unpack_tagged(data):
            number = tag & ~CRITICAL
            if number == OPT_NOT_BEFORE:
                if len(value) != 8:
                    raise ValueError(f"option {tag:#06x} has {len(value)} bytes; expected 8")
                values[number] = value
            elif number == OPT_UNIQUE_KEY:
                if not 1 <= len(value) <= 255 or any(not 0x21 <= byte <= 0x7E for byte in value):
                    raise ValueError(f"option {tag:#06x} must be 1-255 bytes of visible ASCII")
                values[number] = value
            elif number in (OPT_TIMEOUT, OPT_PRIORITY, OPT_MAX_ATTEMPTS, OPT_RETRY_BACKOFF, OPT_UNIQUE_TTL):
                if len(value) != 4:
                    raise ValueError(f"option {tag:#06x} has {len(value)} bytes; expected 4")
                values[number] = value
            elif number in (OPT_TRACEPARENT, OPT_TRACESTATE):
                problem = (traceparent_problem if number == OPT_TRACEPARENT else tracestate_problem)(value)
                if problem and tag & CRITICAL:
                    raise ValueError(f"option {tag:#06x} is not valid: {problem}")
                values[number] = None if problem else value
            elif tag & CRITICAL:
                raise ValueError(f"field {tag:#06x} is marked critical and is not supported")
        get = lambda number, fmt, default: struct.unpack(fmt, values[number])[0] if number in values else default
        traceparent = values.get(OPT_TRACEPARENT)
        tracestate = values.get(OPT_TRACESTATE) if traceparent else None
        return TaskOptions(get(OPT_TIMEOUT, ">I", 300_000), get(OPT_PRIORITY, ">i", 0),
                           max(1, get(OPT_MAX_ATTEMPTS, ">I", 1)), get(OPT_RETRY_BACKOFF, ">I", 1_000),
                           traceparent=traceparent.decode("ascii") if traceparent else None,
                           tracestate=tracestate.decode("ascii") if tracestate else None,
                           not_before=get(OPT_NOT_BEFORE, ">Q", None),
                           unique_key=values[OPT_UNIQUE_KEY].decode("ascii") if OPT_UNIQUE_KEY in values else None,
                           unique_ttl_ms=get(OPT_UNIQUE_TTL, ">I", 0) if OPT_UNIQUE_KEY in values else 0)


DEFAULT_OPTIONS = TaskOptions()


def decode_dispatch_meta(data: bytes, version: int = 3) -> Tuple[int, int]:
    """A DISPATCH meta field (§6.2) as (attempt, timeout_ms), for consumers written with this package."""
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
KNOWN_STATES = ("queued", "scheduled", "reserved", "running", "done", "unknown")
