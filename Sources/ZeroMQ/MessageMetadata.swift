import CZMQ

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The metadata libzmq attaches to every message it received on one connection
/// (`zmq_msg_gets`): the peer's address and, on a socket that a ZAP handler authenticates, the
/// `User-Id` and the properties the handler returned (see ``ZAPReply``).
///
/// ``Socket/receiveMultipart(into:metadata:flags:)`` keeps the last frame of the message it
/// received in this holder (no copy: it is received straight into it), so the properties can be
/// read afterwards, and only when they are wanted, until the next receive into the same holder
/// (which replaces them, or, when nothing was waiting, empties them).
///
/// Thread rules: like a ``Message``, it belongs to the thread that receives into it.
public final class MessageMetadata {
    /// The last frame received into the holder.
    var held = zmq_msg_t()

    /// An empty holder (`zmq_msg_init`).
    public init() {
        zmq_msg_init(&held)
    }

    deinit {
        zmq_msg_close(&held)
    }

    /// The property `name` of the message last received into this holder (`zmq_msg_gets`), or
    /// `nil` when it has none (no ZAP handler, a name the handler did not return, or no message).
    public func property(_ name: String) -> String? {
        guard let value = zmq_msg_gets(&held, name) else { return nil }
        return String(cString: value)
    }

    /// Calls `body` with the bytes of the property `name` (without the terminating NUL), or with
    /// `nil` when there is no such property (`zmq_msg_gets`). Nothing is copied: for hot loops that
    /// compare a property message after message. Property names of at most 15 bytes cost libzmq no
    /// allocation either.
    public func withProperty<R>(_ name: StaticString, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        let cName = UnsafeRawPointer(name.utf8Start).assumingMemoryBound(to: CChar.self)
        guard let value = zmq_msg_gets(&held, cName) else { return body(nil) }
        return body(UnsafeRawBufferPointer(start: value, count: strlen(value)))
    }
}

extension Socket {
    /// Receives every frame of one multipart message into `message`, as
    /// ``receiveMultipart(into:flags:)`` does, each into `metadata`'s message, which keeps the last
    /// frame: its properties (`User-Id`, ZAP metadata, `Peer-Address`) can then be read. (The
    /// last frame, not the first: a ROUTER's routing-id frame carries no metadata when a poll
    /// fetched the message ahead.)
    /// - Returns: `false` when `.dontWait` was given and no message was waiting (`metadata` is
    ///   then empty).
    public func receiveMultipart(into message: inout Multipart, metadata: MessageMetadata,
                                 flags: ReceiveFlags = []) throws(ZMQError) -> Bool {
        // zmq_msg_recv releases what the holder held before.
        let first = try zmqCall("receive on \(type) socket") { zmq_msg_recv(&metadata.held, handle, flags.rawValue) }
        if case .wouldBlock = first { return false }
        message.removeAll()
        while true {
            message.append(UnsafeRawBufferPointer(start: zmq_msg_data(&metadata.held), count: zmq_msg_size(&metadata.held)))
            guard zmq_msg_more(&metadata.held) != 0 else { return true }
            // The rest of a multipart message is already here: libzmq delivers messages whole.
            let next = try zmqCall("receive on \(type) socket") { zmq_msg_recv(&metadata.held, handle, 0) }
            if case .wouldBlock = next { return true }
        }
    }
}
