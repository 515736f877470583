"""Checks against a live broker, and of the encoders without one: what ``python -m conveyor_client``
runs (see ``cli``).

``run_tasks`` submits echo and sha256 tasks, checks every result, then exercises HELLO, status,
cancel, resubmission, rejection and stats. ``run_raw_checks`` sends malformed messages on a bare
DEALER and checks the broker's answers (protocol version mismatch, unknown command, short SUBMIT
group, malformed packed frames, unknown and critical options, a version-2 peer, garbage without the
tag). ``self_test`` checks the encoders against the golden bytes of PROTOCOL.md, without a broker.
Each prints PASS/FAIL lines, a summary and ALL OK or FAILED, and returns the exit status.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import time
import uuid
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .client import BrokerProtocolError, BrokerTimeout, Client, zmq
from .protocol import (
    ACCEPTED, CRITICAL, DEFAULT_OPTIONS, ERROR, HELLO, OPT_TIMEOUT, OPT_WORKFLOW_PARENT, OPT_TRACEPARENT, READY,
    REJECTED, RESULT, STATS, STATS_REPLY, STATUS, STATUS_REPLY, SUBMIT, TAG, TAG_V2, TAGS, TaskOptions,
    decode_dispatch_meta, hello_body, pack_fields, pack_tagged, parse, well_formed,
)

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
    reserved = pack_tagged([(OPT_WORKFLOW_PARENT | CRITICAL, b"group-1")])
    sock.send_multipart([TAG, bytes([SUBMIT]), pack_fields(
        [ids("plain"), b"echo", plain, b'{"plain":1}', ids("critical"), b"echo", critical, b"2",
         ids("reserved"), b"echo", reserved, b"3"])])
    # A version-2 peer on the same broker: 16-byte options, and every answer tagged CVY2.
    v2_options = TaskOptions(timeout_ms=20_000, priority=1).encode(2)
    sock.send_multipart([TAG_V2, bytes([SUBMIT]), pack_fields([ids("v2"), b"echo", v2_options, b'{"v2":true}'])])

    seen: Dict[Tuple[bytes, str], Any] = {}
    deadline = time.monotonic() + reply_wait
    wanted = {(ids("plain"), "accepted"), (ids("plain"), "result"), (ids("critical"), "rejected"),
              (ids("reserved"), "rejected"), (ids("v2"), "accepted"), (ids("v2"), "result")}
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
    rejected = seen.get((ids("reserved"), "rejected"))
    checker.check(rejected is not None and "0x8007" in rejected[1] and "workflow_parent" in rejected[1],
                  f"the reserved workflow_parent option sent critical is REJECTED by name ({rejected})")
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
    """Checks the encoders of this package against the golden bytes of PROTOCOL.md §6 and §5.5, which
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
    hello = hello_body(software="conveyor-swift").decode()
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

