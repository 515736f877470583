/// A message that breaks the protocol. Its ``description`` is what the broker sends back in an
/// `ERROR` reply (or, for a task's options, in `REJECTED`), so it names what was wrong in words a
/// client author can act on.
public enum ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Frame 0 is not a Conveyor tag at all: a stranger on the port. Dropped, not answered.
    case notConveyor
    /// A Conveyor tag of a version this build does not speak.
    case unsupportedVersion(String)
    /// Frame 1 is missing, longer than one byte, or an unknown command (or one the message's
    /// version does not have).
    case unknownCommand(String)
    /// The frames after the command do not fit it.
    case malformed(String)
    /// A tagged field (options, dispatch meta) marked critical whose number this build does not
    /// know: the item it belongs to is refused rather than run with the field ignored.
    case unsupportedField(String)

    public var description: String {
        switch self {
        case .notConveyor:
            "not a Conveyor message: frame 0 must be the protocol tag \"\(ProtocolTag.currentText)\""
        case .unsupportedVersion(let tag):
            "unsupported protocol \"\(tag)\": this peer speaks "
                + ProtocolTag.supportedText.map { "\"\($0)\"" }.joined(separator: " and ")
        case .unknownCommand(let what):
            "unknown command \(what)"
        case .malformed(let what):
            "malformed message: \(what)"
        case .unsupportedField(let what):
            "unsupported: \(what)"
        }
    }
}
