import Foundation
import Synchronization
import Testing
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The root of every ZeroMQ wrapper suite. Serialized so that the file-descriptor counts of
/// ``LeakTests`` are not disturbed by sockets other tests of this target open meanwhile.
@Suite("ZeroMQ wrapper", .serialized)
enum WrapperTests {}

/// How long a test waits for something that should happen promptly.
let patience: Duration = .seconds(5)

/// A socket that drops unsent messages on close, so that a failed test never blocks the
/// context's termination.
func makeSocket(_ context: Context, _ type: SocketType) throws -> Socket {
    let socket = try Socket(context, type: type)
    try socket.set(.linger, 0)
    return socket
}

/// Binds `socket` to a free TCP port on the loopback address and returns the resolved endpoint.
func bindLoopback(_ socket: Socket) throws -> String {
    try socket.bind("tcp://127.0.0.1:*")
    return try socket.lastEndpoint
}

/// Waits up to `timeout` for `socket` to become readable, then receives one whole message.
/// Returns `nil` when nothing arrived in time.
func receiveMessage(_ socket: Socket, within timeout: Duration = patience) throws -> [Message]? {
    var poller = Poller()
    poller.add(socket)
    guard try poller.poll(timeout: timeout) > 0 else { return nil }
    return try socket.receiveMultipart(flags: .dontWait)
}

/// Like ``receiveMessage(_:within:)``, with every frame decoded as UTF-8.
func receiveStrings(_ socket: Socket, within timeout: Duration = patience) throws -> [String]? {
    try receiveMessage(socket, within: timeout)?.map(\.string)
}

/// The number of file descriptors this process has open (Linux `/proc/self/fd`).
func openFileDescriptorCount() throws -> Int {
    try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count
}

/// A value written by one thread and read by another.
final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    init(_ value: Value) { storage = Mutex(value) }
    var value: Value {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

/// Deterministic, non-repeating-looking test bytes.
func patternBytes(count: Int, seed: UInt32 = 0x9E37_79B9) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
        state ^= state << 13
        state ^= state >> 17
        state ^= state << 5
        return UInt8(truncatingIfNeeded: state)
    }
}
