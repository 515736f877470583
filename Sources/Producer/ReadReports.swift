import ConveyorProtocol
import ZeroMQ

/// The producer's side of the broker's budget of unread bytes: READ, with the bytes of the
/// broker's messages read since the last one, once 1 MiB is read and at least once a heartbeat
/// interval (so it doubles as the producer's sign of life); `READ connected` on a new connection.
struct ReadReports {
    let interval: UInt64
    var unreported = 0
    var lastReport: UInt64 = 0
    /// Cleared when the broker answers READ as an unknown command.
    var brokerTakesReads = true

    init(interval: UInt64) { self.interval = interval }

    mutating func report(on socket: Socket, now: UInt64) {
        lastReport = now
        guard brokerTakesReads else { return }
        var message = OutgoingMessage(.read)
        message.append(String(unreported))
        unreported = 0
        _ = try? message.send(on: socket, flags: .dontWait)
    }

    mutating func reportIfDue(on socket: Socket, now: UInt64) {
        if now &- lastReport >= interval { report(on: socket, now: now) }
    }

    mutating func connected(on socket: Socket) {
        unreported = 0
        guard brokerTakesReads else { return }
        var message = OutgoingMessage(.read)
        message.append("connected")
        _ = try? message.send(on: socket, flags: .dontWait)
    }
}
