import ConveyorSystem
import Foundation
import Synchronization
import ZeroMQ

/// One run of the PUSH/PULL throughput benchmark; encodes to the same JSON line as
/// `bench/c/pushpull.c`, e.g. `{"impl":"swift","messages":1000000,"size":100,"seconds":0.31,"msgs_per_sec":3200000}`.
struct PushPullResult: Codable, Equatable {
    let impl: String
    let messages: Int
    let size: Int
    let seconds: Double
    let msgsPerSec: Double

    enum CodingKeys: String, CodingKey {
        case impl, messages, size, seconds
        case msgsPerSec = "msgs_per_sec"
    }
}

/// Why a benchmark run could not produce a result.
struct PushPullBenchmarkError: Error, CustomStringConvertible {
    let description: String
}

/// PUSH/PULL throughput through the Swift wrapper, measured exactly as `bench/c/pushpull.c`
/// measures plain libzmq, so that the two numbers compare the wrappers' cost and nothing else.
///
/// One process and one context: a PULL bound on `tcp://127.0.0.1:*` on the calling thread and a
/// PUSH connected to it from a sender thread, which creates and closes its own socket (sockets
/// stay on the thread that made them). The sender sends `messages` frames of `size` bytes with
/// `send(UnsafeRawBufferPointer)` (one `zmq_send` each, from one buffer); the receiver takes them
/// with `receive(into:)` (one `zmq_recv` each into one reused buffer, as the C program does) and checks each one's size. The clock runs from just before the sender thread starts until the
/// last message has been received. High-water marks are libzmq's defaults.
func runPushPullBenchmark(messages: Int, size: Int) throws -> PushPullResult {
    guard messages > 0, size >= 0 else {
        throw PushPullBenchmarkError(description: "pushpull needs messages > 0 and size >= 0 (got \(messages), \(size))")
    }
    let context = try Context()
    let pull = try Socket(context, type: .pull)
    try pull.bind("tcp://127.0.0.1:*")
    let endpoint = try pull.lastEndpoint

    let senderFailure = SenderFailure()
    let senderFinished = DispatchSemaphore(value: 0)
    let sender = Thread {
        defer { senderFinished.signal() }
        do throws(ZMQError) {
            let push = try Socket(context, type: .push)
            try push.connect(endpoint)
            let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
            defer { payload.deallocate() }
            payload.initializeMemory(as: UInt8.self, repeating: UInt8(ascii: "x"))
            let frame = UnsafeRawBufferPointer(rebasing: payload[0..<size])
            for _ in 0..<messages {
                try push.send(frame)
            }
        } catch {
            senderFailure.record(error)
            context.shutdown()  // so that the receiver's blocking receive ends too
        }
    }
    sender.name = "pushpull-sender"

    let clock = ContinuousClock()
    let start = clock.now
    sender.start()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(size, 1), alignment: 16)
    defer { buffer.deallocate() }
    do {
        for index in 0..<messages {
            guard let received = try pull.receive(into: buffer) else {
                throw PushPullBenchmarkError(description: "receive returned nothing at message \(index)")
            }
            guard received == size else {
                throw PushPullBenchmarkError(description: "message \(index) has \(received) bytes, expected \(size)")
            }
        }
    } catch {
        context.shutdown()  // so that a sender blocked on a full queue ends
        senderFinished.wait()
        throw senderFailure.error ?? error
    }
    let elapsed = start.duration(to: clock.now)
    senderFinished.wait()
    if let error = senderFailure.error { throw error }

    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return PushPullResult(
        impl: "swift", messages: messages, size: size, seconds: seconds,
        msgsPerSec: Double(messages) / seconds
    )
}

/// The sender thread's error, read by the calling thread after the sender has finished.
private final class SenderFailure: Sendable {
    private let stored = Mutex<ZMQError?>(nil)
    func record(_ error: ZMQError) { stored.withLock { $0 = error } }
    var error: ZMQError? { stored.withLock { $0 } }
}
