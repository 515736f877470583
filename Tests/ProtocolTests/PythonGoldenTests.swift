import ConveyorProtocol
import Foundation
import Testing

/// The Python client (clients/python) encodes what the Swift protocol module encodes: its
/// self-test (`python3 -m conveyor_client --self-test`, run from the source tree) checks its
/// encoders against the golden bytes of PROTOCOL.md, and against this module's own encodings,
/// passed to it in the environment. No broker, no pyzmq needed.
@Suite("Python client golden bytes")
struct PythonGoldenTests {
    static let package = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("clients/python")

    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }

    @Test("python3 -m conveyor_client --self-test passes, with the Swift encodings of options, meta and HELLO")
    func pythonSelfTest() throws {
        let options = TaskOptions(timeoutMilliseconds: 30000, priority: -2, maxAttempts: 3, retryBackoffMilliseconds: 500)
        var environment = ProcessInfo.processInfo.environment
        environment["CONVEYOR_GOLDEN_OPTIONS_V3"] = Self.hex(options.encoded(for: .v3))
        environment["CONVEYOR_GOLDEN_OPTIONS_V2"] = Self.hex(options.encoded(for: .v2))
        environment["CONVEYOR_GOLDEN_META_V3"] = Self.hex(DispatchMeta(attempt: 2, timeoutMilliseconds: 59_750).encoded(for: .v3))
        environment["CONVEYOR_GOLDEN_HELLO"] = Hello(versions: [2, 3], role: .producer, software: "conveyor-swift").json
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        environment["PYTHONPATH"] = ([Self.package.path] + [environment["PYTHONPATH"]].compactMap { $0 })
            .joined(separator: ":")
        process.arguments = ["python3", "-m", "conveyor_client", "--self-test"]
        process.environment = environment
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "python3 -m conveyor_client --self-test failed:\n\(output)")
        #expect(output.contains("ALL OK"), "\(output)")
        #expect(output.contains("the Swift HELLO body is ours byte for byte"), "\(output)")
        #expect(!output.contains("FAIL "), "\(output)")
    }
}
