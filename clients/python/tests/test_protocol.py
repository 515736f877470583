"""The encoders and decoders, without sockets: packed frames, tagged fields, options, dispatch meta,
HELLO and received messages, against the bytes of docs/PROTOCOL.md (§6, §5.5, the worked example of
§11) and, when the Swift test passes them, against the Swift encoder's own bytes."""
import re
import struct
import unittest

import _support
from _support import GOLDEN_SKIP, PACKAGE_ROOT, REPOSITORY_ROOT, golden

import conveyor_client
from conveyor_client import (
    CRITICAL, DEFAULT_OPTIONS, TAG, TAG_V2, Client, Result, StatusReport, TaskOptions, decode_dispatch_meta,
    pack_fields, pack_tagged, parse, unpack_fields, unpack_tagged, well_formed,
)
from conveyor_client import protocol
from conveyor_client.protocol import hello_body

# The worked example of PROTOCOL.md §11: echo task job-1, timeout 5000 ms, args {"n":1}.
SUBMIT_FRAME = bytes.fromhex("00000005" "6a6f622d31" "00000004" "6563686f" "00000008" "0001000400001388"
                             "00000007" "7b226e223a317d")
ACCEPTED_FRAME = bytes.fromhex("00000005" "6a6f622d31")
RESULT_INFO = b'{"host":"vm","pid":4242,"thread":0,"attempts":1,"elapsed_ms":0.049}'
RESULT_FRAME = (bytes.fromhex("00000005" "6a6f622d31" "00000002" "6f6b" "00000007" "7b226e223a317d" "00000043")
                + RESULT_INFO)
# §6.1 and §13.2: every option set, in both versions; §6.2: attempt 2, 59,750 ms left.
FULL = TaskOptions(timeout_ms=30_000, priority=-2, max_attempts=3, retry_backoff_ms=500)
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
FULL_V3 = bytes.fromhex("0001000400007530" "00020004fffffffe" "0003000400000003" "00040004000001f4")
FULL_V2 = bytes.fromhex("00007530fffffffe00000003000001f4")
META_V3 = bytes.fromhex("0001000400000002" "000200040000e966")
META_V2 = bytes.fromhex("000000020000e966")
HELLO_SWIFT = b'{"capabilities":[],"role":"producer","software":"conveyor-swift","versions":[2,3]}'


# PROTOCOL.md §6.1: timeout 5 s, not_before 1800000000000 (2027-01-15T08:00:00Z), unique key
# "daily-report" kept 60 s after the task ends (not_before, unique_key and unique_ttl_ms critical).
SCHEDULED = TaskOptions(timeout_ms=5000, not_before=1_800_000_000_000, unique_key="daily-report", unique_ttl_ms=60_000)
SCHEDULED_V3 = bytes.fromhex("0001000400001388" "80050008000001a3185c5000" "8006000c") + b"daily-report" + bytes.fromhex("800d00040000ea60")


class PackedFrameTests(unittest.TestCase):
    def test_the_worked_example_submit_frame(self):
        options = TaskOptions(timeout_ms=5000).encode(3)
        frame = pack_fields([b"job-1", b"echo", options, b'{"n":1}'])
        self.assertEqual(frame, SUBMIT_FRAME)
        self.assertEqual(len(frame), 40)
        self.assertEqual(unpack_fields(frame), [b"job-1", b"echo", options, b'{"n":1}'])

    def test_empty_options_make_a_32_byte_frame(self):
        self.assertEqual(len(pack_fields([b"job-1", b"echo", DEFAULT_OPTIONS.encode(), b'{"n":1}'])), 32)

    def test_round_trip_with_empty_and_large_fields(self):
        fields = [b"", b"x", bytes(range(256)) * 300, b"", "h\u00e9llo \u2713".encode()]
        self.assertEqual(unpack_fields(pack_fields(fields)), fields)
        self.assertEqual(unpack_fields(b""), [])

    def test_a_truncated_length_is_refused(self):
        with self.assertRaisesRegex(ValueError, "field 1 has a truncated length"):
            unpack_fields(pack_fields([b"ok"]) + b"\x00\x00")

    def test_a_field_running_past_the_end_is_refused(self):
        # §11: "SUBMIT field 1 claims 4096 bytes; 0 are left"
        with self.assertRaisesRegex(ValueError, "field 1 claims 4096 bytes; 0 are left"):
            unpack_fields(bytes.fromhex("00000005" "6a6f622d32" "00001000"))


class TaggedFieldTests(unittest.TestCase):
    def test_pack_and_unpack(self):
        fields = [(0x0001, b"\x00\x00\x13\x88"), (0x7123, b""), (0x8005, b"12345678")]
        packed = pack_tagged(fields)
        self.assertEqual(packed[:8], bytes.fromhex("0001000400001388"))
        self.assertEqual(unpack_tagged(packed), fields)

    def test_the_worked_example_workflow_parent_sent_critical(self):
        packed = pack_tagged([(protocol.OPT_WORKFLOW_PARENT | CRITICAL, b"group-1")])
        self.assertEqual(packed, bytes.fromhex("80070007") + b"group-1")
        with self.assertRaisesRegex(ValueError, "0x8007.*critical"):
            TaskOptions.decode(packed)

    def test_fields_that_do_not_fit_are_refused(self):
        with self.assertRaises(ValueError):
            pack_tagged([(0x10000, b"")])
        with self.assertRaises(ValueError):
            pack_tagged([(0x0001, b"x" * 0x10000)])

    def test_a_cut_header_and_a_value_past_the_end_are_refused(self):
        with self.assertRaisesRegex(ValueError, "too few for a field header"):
            unpack_tagged(b"\x00\x01\x00")
        with self.assertRaisesRegex(ValueError, "claims 4 bytes; 1 are left"):
            unpack_tagged(b"\x00\x01\x00\x04\x00")


class TaskOptionsTests(unittest.TestCase):
    def test_golden_bytes_in_both_versions(self):
        self.assertEqual(FULL.encode(3), FULL_V3)
        self.assertEqual(FULL.encode(2), FULL_V2)
        self.assertEqual(TaskOptions.decode(FULL_V3), FULL)
        self.assertEqual(TaskOptions.decode(FULL_V2, 2), FULL)

    def test_defaults_are_an_empty_field_and_only_changed_options_are_written(self):
        self.assertEqual(DEFAULT_OPTIONS.encode(3), b"")
        self.assertEqual(DEFAULT_OPTIONS.encode(2), b"")
        self.assertEqual(TaskOptions(priority=5).encode(3), bytes.fromhex("0002000400000005"))
        self.assertEqual(TaskOptions(timeout_ms=5000).encode(2), bytes.fromhex("00001388" "00000000" "00000001" "000003e8"))

    def test_extra_fields_follow_the_options_as_given(self):
        extra = ((protocol.OPT_REQUIRE_CONSUMER | CRITICAL, b""), (0x7001, b"00-ab"))
        encoded = TaskOptions(priority=1, extra=extra).encode(3)
        self.assertEqual(encoded, bytes.fromhex("0002000400000001" "800b0000" "70010005") + b"00-ab")
        with self.assertRaisesRegex(ValueError, "version-2 options field cannot carry extra"):
            TaskOptions(extra=extra).encode(2)

    def test_decoding_skips_unknown_plain_fields_and_keeps_the_last_repeat(self):
        skipped = pack_tagged([(0x0042, b"x" * 300), (0x0001, struct.pack(">I", 1234))])
        self.assertEqual(TaskOptions.decode(skipped), TaskOptions(timeout_ms=1234))
        repeated = pack_tagged([(0x0001, struct.pack(">I", 1000)), (0x0001, struct.pack(">I", 2000))])
        self.assertEqual(TaskOptions.decode(repeated).timeout_ms, 2000)
        self.assertEqual(TaskOptions.decode(pack_tagged([(0x0003, struct.pack(">I", 0))])).max_attempts, 1)

    def test_decoding_refuses_what_a_broker_refuses(self):
        for bad in (pack_tagged([(0x8042, b"")]), b"\x00\x01\x00", pack_tagged([(0x0001, b"\x00\x00")])):
            with self.assertRaises(ValueError, msg=bad.hex()):
                TaskOptions.decode(bad)
        with self.assertRaisesRegex(ValueError, "expected 0 or 16"):
            TaskOptions.decode(b"\x00" * 15, 2)

    def test_trace_context_is_two_plain_text_fields_in_number_order(self):
        options = TaskOptions(timeout_ms=5000, traceparent=TRACEPARENT, tracestate="rojo=1")
        golden = bytes.fromhex("0001000400001388" "00090037") + TRACEPARENT.encode() + bytes.fromhex("000a0006") + b"rojo=1"
        self.assertEqual(options.encode(3), golden)
        self.assertEqual(TaskOptions.decode(golden), options)
        self.assertEqual(options.encode(2), TaskOptions(timeout_ms=5000).encode(2), "version 2 cannot carry it")
        self.assertEqual(TaskOptions(traceparent=TRACEPARENT).encode(2), b"")

    def test_not_before_and_unique_key_are_critical_fields_in_number_order(self):
        options = TaskOptions(timeout_ms=5000, not_before=1_800_000_000_000, unique_key="daily-report",
                              unique_ttl_ms=60_000)
        self.assertEqual(options.encode(3), SCHEDULED_V3)
        self.assertEqual(TaskOptions.decode(SCHEDULED_V3), options)
        with self.assertRaisesRegex(ValueError, "version-2 options field cannot carry not_before"):
            options.encode(2)
        with self.assertRaisesRegex(ValueError, "visible ASCII"):
            TaskOptions(unique_key="two words")
        with self.assertRaisesRegex(ValueError, "without a unique_key"):
            TaskOptions(unique_ttl_ms=5)
        with self.assertRaisesRegex(ValueError, "expected 8"):
            TaskOptions.decode(pack_tagged([(0x8005, b"\x00" * 4)]))

    def test_a_malformed_trace_context_is_refused_naming_the_option(self):
        with self.assertRaisesRegex(ValueError, r"traceparent '00-abc' is not a W3C traceparent: it has 6 characters"):
            TaskOptions(traceparent="00-abc")
        with self.assertRaisesRegex(ValueError, "its trace id is all zeros"):
            TaskOptions(traceparent="00-" + "0" * 32 + "-00f067aa0ba902b7-01")
        with self.assertRaisesRegex(ValueError, "tracestate is given without a traceparent"):
            TaskOptions(tracestate="rojo=1")
        with self.assertRaisesRegex(ValueError, "is not printable ASCII"):
            TaskOptions(traceparent=TRACEPARENT, tracestate="a\nb")

    def test_decoding_drops_a_plain_trace_field_that_is_not_valid_as_the_broker_does(self):
        self.assertEqual(TaskOptions.decode(pack_tagged([(protocol.OPT_TRACEPARENT, b"00-no")])), DEFAULT_OPTIONS)
        self.assertEqual(TaskOptions.decode(pack_tagged([(protocol.OPT_TRACESTATE, b"rojo=1")])), DEFAULT_OPTIONS)
        with self.assertRaisesRegex(ValueError, "is not valid"):
            TaskOptions.decode(pack_tagged([(protocol.OPT_TRACEPARENT | CRITICAL, b"00-no")]))

    def test_values_out_of_range_are_refused(self):
        for arguments in ({"timeout_ms": 0}, {"timeout_ms": 2**32}, {"priority": 2**31}, {"priority": -2**31 - 1},
                          {"max_attempts": -1}, {"retry_backoff_ms": 2**32}):
            with self.assertRaises(ValueError, msg=str(arguments)):
                TaskOptions(**arguments)
        self.assertEqual(TaskOptions(priority=-2**31).encode(3), bytes.fromhex("0002000480000000"))


class DispatchMetaTests(unittest.TestCase):
    def test_both_versions(self):
        self.assertEqual(decode_dispatch_meta(META_V3), (2, 59_750))
        self.assertEqual(decode_dispatch_meta(META_V2, 2), (2, 59_750))
        # §11: attempt 1, 4999 ms left, with an unknown plain field in between.
        meta = bytes.fromhex("0001000400000001" "0077000199" "0002000400001387")
        self.assertEqual(decode_dispatch_meta(meta), (1, 4999))

    def test_missing_or_critical_fields_are_refused(self):
        with self.assertRaisesRegex(ValueError, "lacks attempt or timeout_ms"):
            decode_dispatch_meta(META_V3[:8])
        with self.assertRaisesRegex(ValueError, "critical"):
            decode_dispatch_meta(META_V3 + bytes.fromhex("80770000"))
        with self.assertRaisesRegex(ValueError, "expected 8"):
            decode_dispatch_meta(META_V2 + b"\x00", 2)


class HelloTests(unittest.TestCase):
    def test_the_documented_bodies(self):
        self.assertEqual(hello_body(), b'{"capabilities":[],"role":"producer","versions":[2,3]}')   # §11, 54 bytes
        self.assertEqual(len(hello_body()), 54)
        self.assertEqual(hello_body(software="conveyor-swift"), HELLO_SWIFT)                        # §5.5

    def test_this_client_names_itself_with_its_version(self):
        from conveyor_client.client import SOFTWARE
        self.assertEqual(SOFTWARE, f"conveyor-python {conveyor_client.__version__}")


class ParseTests(unittest.TestCase):
    def test_replies_of_the_worked_example(self):
        self.assertEqual(parse([TAG, b"\x11", ACCEPTED_FRAME]), (protocol.ACCEPTED, [b"job-1"]))
        command, fields = parse([TAG, b"\x13", RESULT_FRAME])
        self.assertEqual(command, protocol.RESULT)
        self.assertEqual(fields, [b"job-1", b"ok", b'{"n":1}', RESULT_INFO])
        self.assertEqual(len(RESULT_FRAME), 97)
        status = [TAG, b"\x15", b"job-1", b"done", b"ok", b'{"n":1}', RESULT_INFO]
        self.assertEqual(parse(status), (protocol.STATUS_REPLY, status[2:]))

    def test_the_tag_decides_the_version(self):
        reply = [TAG_V2, b"\x14", b"q1", b"cancelled"]
        self.assertIsNone(parse(reply))
        self.assertEqual(parse(reply, TAG_V2), (protocol.CANCEL_REPLY, [b"q1", b"cancelled"]))
        self.assertIsNone(parse([TAG_V2, b"\x08", b"{}"], TAG_V2), "HELLO does not exist in version 2")
        self.assertIsNotNone(parse([TAG, b"\x08", b"{}"]))

    def test_malformed_messages_are_dropped(self):
        for frames in ([TAG], [b"CVY9", b"\x11", ACCEPTED_FRAME], [TAG, b"\x7e"], [TAG, b"\x11\x11", ACCEPTED_FRAME],
                       [TAG, b"\x13", pack_fields([b"job-1", b"ok", b"{}"])],           # 3 fields, not 4
                       [TAG, b"\x11", b""],                                            # no group at all
                       [TAG, b"\x11", ACCEPTED_FRAME, ACCEPTED_FRAME],                  # two packed frames
                       [TAG, b"\x11", ACCEPTED_FRAME + b"\x00"],                        # truncated length
                       [TAG, b"\x15", b"job-1", b"done", b"ok", b"{}"],                 # STATUS_REPLY has 5
                       [TAG, b"\x16"]):                                                # STATS_REPLY has 1
            self.assertIsNone(parse(frames), frames)
            self.assertFalse(well_formed(frames))


class ResultTests(unittest.TestCase):
    def test_results_and_status_reports_read_words_they_do_not_know(self):
        ok = Result("a", "ok", b'{"n":1}', {})
        self.assertTrue(ok.ok and ok.recognized)
        self.assertEqual(ok.value, {"n": 1})
        self.assertIsNone(ok.error)
        failed = Result("b", "error", b'{"error":"boom","kind":"handler_error"}', {"attempts": 2, "thread": 1})
        self.assertEqual((failed.ok, failed.error, failed.kind), (False, "boom", "handler_error"))
        self.assertEqual(failed.describe_worker(), "thread 1, attempt 2")
        newer = Result("c", "paused", b"not json", {})
        self.assertEqual((newer.ok, newer.recognized, newer.value), (False, False, None))
        self.assertFalse(StatusReport("d", "unknown", None).held)
        self.assertTrue(StatusReport("e", "deferred", None).held)
        self.assertFalse(StatusReport("e", "deferred", None).finished)

    def test_args_are_compact_utf8_json_and_bytes_are_sent_as_they_are(self):
        self.assertEqual(Client.encode_args({"a": [1, None], "t": "\u2713"}), '{"a":[1,null],"t":"\u2713"}'.encode())
        self.assertEqual(Client.encode_args(b'{"raw": 1}'), b'{"raw": 1}')


class PackageTests(unittest.TestCase):
    def test_the_tests_import_the_source_tree(self):
        self.assertEqual(conveyor_client.__file__, str(PACKAGE_ROOT / "conveyor_client" / "__init__.py"))

    def test_the_public_api_is_exported(self):
        for name in conveyor_client.__all__:
            self.assertTrue(hasattr(conveyor_client, name), name)
        self.assertIs(conveyor_client.Client, conveyor_client.client.Client)

    def test_the_version_is_the_one_of_pyproject_and_of_the_swift_package(self):
        version = conveyor_client.__version__
        pyproject = (PACKAGE_ROOT / "pyproject.toml").read_text(encoding="utf-8")
        self.assertRegex(version, r"^\d+\.\d+\.\d+$")
        self.assertIn(f'\nversion = "{version}"', pyproject)
        if not _support.IN_REPOSITORY:
            self.skipTest("not inside the Conveyor repository: no Swift version to compare with")
        swift = (REPOSITORY_ROOT / "Sources/ConveyorProtocol/Version.swift").read_text(encoding="utf-8")
        match = re.search(r'^\s*public static let number = "([^"]+)"', swift, re.MULTILINE)
        self.assertIsNotNone(match, "Version.swift no longer says `static let number = \"...\"`")
        self.assertEqual(version, match.group(1), "the Python client's version differs from `conveyor --version`")

    def test_the_command_line_self_test_and_version(self):
        run = _support.run_python(["-m", "conveyor_client", "--self-test"], env=_support.source_environment())
        self.assertEqual(run.returncode, 0, run.stdout)
        self.assertIn("ALL OK", run.stdout)
        self.assertNotIn("FAIL ", run.stdout)
        run = _support.run_python(["-m", "conveyor_client", "--version"], env=_support.source_environment())
        self.assertEqual(run.returncode, 0, run.stdout)
        self.assertIn(f"conveyor-client {conveyor_client.__version__}", run.stdout)


class SwiftGoldenTests(unittest.TestCase):
    """The Swift encoder's bytes, computed by Tests/IntegrationTests/PythonPackageTests.swift."""

    def value(self, name):
        value = golden(name)
        if value is None:
            self.skipTest(GOLDEN_SKIP)
        return value

    def test_options_in_both_versions(self):
        self.assertEqual(FULL.encode(3).hex(), self.value("OPTIONS_V3"))
        self.assertEqual(FULL.encode(2).hex(), self.value("OPTIONS_V2"))

    def test_scheduled_and_unique_options(self):
        self.assertEqual(SCHEDULED.encode(3).hex(), self.value("OPTIONS_SCHEDULED"))

    def test_dispatch_meta(self):
        self.assertEqual(decode_dispatch_meta(bytes.fromhex(self.value("META_V3"))), (2, 59_750))

    def test_hello(self):
        self.assertEqual(hello_body(software="conveyor-swift").decode(), self.value("HELLO"))

    def test_the_worked_example_submit_in_both_versions(self):
        for version in (3, 2):
            options = TaskOptions(timeout_ms=5000).encode(version)
            frame = pack_fields([b"job-1", b"echo", options, b'{"n":1}'])
            self.assertEqual(frame.hex(), self.value(f"SUBMIT_V{version}"), f"version {version}")


if __name__ == "__main__":
    unittest.main()
