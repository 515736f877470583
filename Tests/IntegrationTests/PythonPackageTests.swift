import ConveyorProcess
import ConveyorProtocol
import ConveyorTesting
import Foundation
import Testing

/// The Python client package's own tests (clients/python/tests, the standard library's unittest):
/// its encoders against PROTOCOL.md's bytes and this module's, the client against a stand-in
/// broker, the client against a real `conveyor broker --in-memory` and `conveyor consumer` (the
/// built executable, passed in CONVEYOR_BIN), and an offline `pip install` into a fresh virtual
/// environment. It fails with unittest's output when any of them fails, or is skipped: here every
/// one of them has what it needs.
@Suite("Python client package", .serialized, .timeLimit(.minutes(5)))
struct PythonPackageTests {
    /// The test modules; each must have run (a module that fails to import is one unittest error,
    /// but a module that is not found at all would silently run nothing).
    static let modules = ["test_protocol", "test_wire", "test_end_to_end", "test_install"]

    @Test("python3 -m unittest discover -s clients/python/tests passes with CONVEYOR_BIN, nothing skipped")
    func unittestSuite() throws {
        try PythonSupport.requirePython()
        let conveyor = try Cluster.locateExecutable()
        let tests = PythonSupport.packageDirectory.appendingPathComponent("tests")
        var environment = PythonSupport.environment.merging(Self.goldens) { $1 }
        environment["CONVEYOR_BIN"] = conveyor.path
        try PythonSupport.runUnittest(in: tests, environment: environment, modules: Self.modules, minimumTests: 40)
    }

    /// The Swift encoder's bytes, for the Python tests to compare with their own (test_protocol.py,
    /// SwiftGoldenTests): options in both versions, dispatch meta, the HELLO body, and the packed
    /// frame of PROTOCOL.md §11's SUBMIT (job-1, echo, timeout 5000 ms, {"n":1}) in both versions.
    static var goldens: [String: String] {
        let options = TaskOptions(timeoutMilliseconds: 30000, priority: -2, maxAttempts: 3, retryBackoffMilliseconds: 500)
        var goldens = [
            "CONVEYOR_GOLDEN_OPTIONS_V3": hex(options.encoded(for: .v3)),
            "CONVEYOR_GOLDEN_OPTIONS_V2": hex(options.encoded(for: .v2)),
            "CONVEYOR_GOLDEN_OPTIONS_SCHEDULED": hex(TaskOptions(timeoutMilliseconds: 5000, notBefore: 1_800_000_000_000,
                                                                 uniqueKey: "daily-report", uniqueTTLMilliseconds: 60_000).encoded(for: .v3)),
            "CONVEYOR_GOLDEN_META_V3": hex(DispatchMeta(attempt: 2, timeoutMilliseconds: 59_750).encoded(for: .v3)),
            "CONVEYOR_GOLDEN_HELLO": Hello(versions: [2, 3], role: .producer, software: "conveyor-swift").json,
        ]
        for version in ProtocolVersion.allCases {
            var submit = OutgoingMessage(.submit, version: version)
            submit.append("job-1")
            submit.append("echo")
            submit.append(TaskOptions(timeoutMilliseconds: 5000))
            submit.append(#"{"n":1}"#)
            goldens["CONVEYOR_GOLDEN_SUBMIT_V\(version.rawValue)"] = hex(submit.frames[2].bytes)
        }
        return goldens
    }

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
