import ConveyorSystem
import Logging
import Synchronization
import ZeroMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The broker's counts of connections, written by the guard thread and read for `STATS`.
final class ConnectionCounters: Sendable {
    /// TCP connections open on both sockets (accepted, not yet gone).
    let open = Atomic<Int>(0)
    /// Connections closed at once because the broker was at its cap, since the start.
    let refusedAtCap = Atomic<Int>(0)
    /// Handshakes the ZAP handler refused (key not listed, or not allowed on that socket).
    let refusedHandshakes = Atomic<Int>(0)
    /// The cap in force.
    let limit: Int

    init(limit: Int) { self.limit = limit }
}

/// The connection cap (`--max-connections`, bounded by the open-files limit): counts the
/// connections both sockets accepted, from their monitors' events, and closes each new one past
/// the cap at once, before its handshake.
///
/// Why at accept rather than in the ZAP handler: a connection holds a file descriptor from the
/// moment libzmq accepts it, handshake or not, and libzmq's listener spins on `accept` at 100 % CPU
/// once descriptors run out (EMFILE). A ZAP refusal comes only after a handshake (never, for a
/// peer that connects and sends nothing); with status 400 libzmq clients stop reconnecting for
/// good, and with 300 the connection is held silently until the handshake interval ends. Closing
/// it at accept bounds the descriptors whatever the peer does; a libzmq client sees a dropped
/// connection and reconnects later by itself.
///
/// How: `shutdown(2)` of the accepted descriptor the `ZMQ_EVENT_ACCEPTED` event names. It does not
/// close the descriptor (libzmq sees the end of the stream and closes it itself, reporting
/// `ZMQ_EVENT_DISCONNECTED`), so no descriptor number is freed under libzmq's feet. The events of one
/// read are looked at together, and a connection already reported gone in them is left alone (its
/// number may belong to a newer connection by then). libzmq does not report every close (a
/// connection replaced by a routing-id handover goes silently), so once a second the counted
/// descriptors are checked (`getpeername`) and those no longer connected are dropped.
///
/// Runs on the broker's guard thread only (``BrokerGuard``).
final class ConnectionGate {
    /// Descriptors kept for everything else the broker opens (journal files, libzmq's own, pipes).
    static let descriptorReserve = 128

    /// The cap: `requested`, but never more than the open-files limit less the reserve.
    static func effectiveLimit(requested: Int, fileLimit: UInt64) -> Int {
        let room = fileLimit > UInt64(descriptorReserve) ? Int(min(fileLimit, UInt64(Int.max))) - descriptorReserve : 1
        return max(1, min(requested, room))
    }

    /// The process's soft open-files limit (`getrlimit`).
    static var fileLimit: UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return UInt64(limit.rlim_cur)
    }

    let counters: ConnectionCounters
    private let logger: Logger
    private let fileLimit: UInt64
    /// Accepted descriptors not yet reported gone.
    private var open = Set<Int32>()
    private var capLog = RateLimitedLog(interval: 5_000_000_000)
    private var handshakeLog = RateLimitedLog(interval: 5_000_000_000)
    private var lastCheck = monotonicNanoseconds()

    init(counters: ConnectionCounters, fileLimit: UInt64, logger: Logger) {
        self.counters = counters
        self.fileLimit = fileLimit
        self.logger = logger
    }

    /// Handles the events of one read, in order.
    func handle(_ events: [SocketEvent]) {
        for (index, event) in events.enumerated() {
            let fd = Int32(bitPattern: event.value)
            switch event.kind {
            case .accepted:
                open.insert(fd)
                if open.count > counters.limit || UInt64(max(0, fd)) + UInt64(Self.descriptorReserve / 2) >= fileLimit {
                    let goneAlready = events[(index + 1)...].contains { $0.kind == .disconnected && $0.value == event.value }
                    if !goneAlready { refuse(fd, endpoint: event.endpoint) }
                }
            case .disconnected:
                open.remove(fd)
            case .handshakeFailedProtocol, .handshakeFailedNoDetail:
                // Refused before ZAP is asked (ZAP's refusals are counted and logged there): a
                // client without the broker's key (plain ZMTP against CURVE), with another key, or
                // not speaking ZMTP at all.
                counters.refusedHandshakes.add(1, ordering: .relaxed)
                handshakeLog.log(logger, "a client's handshake failed: it is not using CURVE with this broker's public key (give it --curve-server-key), or it is not a ZeroMQ peer", metadata: [
                    "endpoint": "\(event.endpoint)", "zmtp.error": "0x\(String(event.value, radix: 16))",
                ])
            default:
                break
            }
        }
        counters.open.store(open.count, ordering: .relaxed)
    }

    private func refuse(_ fd: Int32, endpoint: String) {
        _ = shutdown(fd, Int32(SHUT_RDWR))
        counters.refusedAtCap.add(1, ordering: .relaxed)
        capLog.log(logger, "connection refused: the broker is at its connection cap", metadata: [
            "connections.open": "\(open.count)", "connections.cap": "\(counters.limit)",
            "open_files_limit": "\(fileLimit)", "endpoint": "\(endpoint)",
        ])
    }

    /// Once a second: drops the descriptors that are no longer connected sockets (closes libzmq
    /// did not report).
    func checkIfDue(now: UInt64) {
        guard now &- lastCheck >= 1_000_000_000 else { return }
        lastCheck = now
        var address = sockaddr_storage()
        for fd in open {
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let connected = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) == 0 }
            }
            if !connected { open.remove(fd) }
        }
        counters.open.store(open.count, ordering: .relaxed)
    }

}
