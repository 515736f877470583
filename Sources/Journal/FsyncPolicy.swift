/// When the journal makes what it wrote durable (docs/RELIABILITY.md states each one's loss window).
public enum FsyncPolicy: Sendable, Equatable, CustomStringConvertible {
    /// Group commit: every batch of records is on stable storage (`fdatasync`) before the
    /// acknowledgements and results it covers go out. Nothing acknowledged is lost to a crash
    /// of the process, the OS or the machine.
    case always
    /// Written to the OS at once (acknowledgements go out after the write), made durable at most
    /// this many milliseconds later: a process crash loses nothing, an OS crash or power loss up
    /// to the interval.
    case interval(milliseconds: Int)
    /// Written to the OS at once, made durable when the OS decides: a process crash loses nothing,
    /// an OS crash or power loss whatever the OS had not written back (typically up to 30 s).
    case never

    /// Parses `always`, `interval:MS` or `never`.
    public init?(_ text: String) {
        switch text {
        case "always": self = .always
        case "never": self = .never
        default:
            guard text.hasPrefix("interval:"), let milliseconds = Int(text.dropFirst("interval:".count)),
                  milliseconds >= 1, milliseconds <= 60_000 else { return nil }
            self = .interval(milliseconds: milliseconds)
        }
    }

    public var description: String {
        switch self {
        case .always: "always"
        case .interval(let milliseconds): "interval:\(milliseconds)"
        case .never: "never"
        }
    }
}
