import ConveyorProtocol
import Foundation
import ZeroMQ

/// The clients a broker with CURVE lets in, each with a name (its identity) and what it may do:
/// the file given by `conveyor broker --curve-clients-file`, reloaded on SIGHUP.
///
/// ```
/// # KEY (40 characters of Z85)              NAME      FIELDS
/// Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID  billing   roles=submit tasks=echo,sha256
/// rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7  ops       roles=admin,submit
/// JTKVSB%%)wK0E.X)V>+}o?pNmC{O&4W4b!Ni{Lh6  worker-1  roles=consume tasks=sha256
/// ```
///
/// One client a line: its CURVE public key, its name, then `roles=` (one or more of `submit`,
/// `consume`, `admin`, comma-separated) and optionally `tasks=` (the task names it may submit and
/// consume, comma-separated; `*` or no `tasks=` for any). Fields are separated by spaces or tabs.
/// A line whose first field is not a key and that starts with `#` is a comment (so a key line
/// commented out with a leading `#` stays a comment, though Z85 keys may themselves begin with
/// `#`), and so is everything from a field that starts with `#`. Blank lines are ignored. A name
/// is 1-64 characters of letters, digits and `.`, `_`, `-`, `@`; several keys may share one (a
/// key being rotated). A key may be listed once.
public struct AllowList: Sendable, Equatable {
    /// One client key's line.
    public struct Entry: Sendable, Equatable {
        public var key: [UInt8]
        public var name: String
        public var roles: Roles
        /// `nil`: any task name.
        public var tasks: Set<String>?
        /// Where it was read, for messages.
        public var line: Int

        public init(key: [UInt8], name: String, roles: Roles, tasks: Set<String>? = nil, line: Int = 0) {
            self.key = key
            self.name = name
            self.roles = roles
            self.tasks = tasks
            self.line = line
        }
    }

    public private(set) var entries: [[UInt8]: Entry] = [:]
    /// The file it was read from, if any.
    public let source: String?

    /// The largest clients file read: a mistake (a key store, a log) rather than a list.
    public static let maxFileBytes = 16 << 20

    public init(_ entries: [Entry], source: String? = nil) {
        self.source = source
        for entry in entries { self.entries[entry.key] = entry }
    }

    public subscript(key: [UInt8]) -> Entry? { entries[key] }

    public var count: Int { entries.count }

    /// Reads and checks the file at `path`.
    public static func load(path: String) throws(AllowListError) -> AllowList {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        if let size = attributes?[.size] as? Int, size > maxFileBytes {
            throw AllowListError(file: path, line: nil, problem: "it is \(size) bytes; a clients file may be at most \(maxFileBytes)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AllowListError(file: path, line: nil, problem: "cannot read it")
        }
        return try parse(String(decoding: data, as: UTF8.self), source: path)
    }

    /// Parses a clients file's text; the first problem found is thrown, naming its line.
    public static func parse(_ text: String, source: String? = nil) throws(AllowListError) -> AllowList {
        var entries: [Entry] = []
        var seen: [[UInt8]: Int] = [:]
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            do throws(AllowListProblem) {
                guard let entry = try parseLine(rawLine, number: number) else { continue }
                if let earlier = seen[entry.key] {
                    throw AllowListProblem("this key is already listed on line \(earlier)")
                }
                seen[entry.key] = number
                entries.append(entry)
            } catch {
                throw AllowListError(file: source, line: number, problem: error.message)
            }
        }
        return AllowList(entries, source: source)
    }

    /// One line: an entry, or `nil` for a blank or comment line.
    static func parseLine(_ line: Substring, number: Int) throws(AllowListProblem) -> Entry? {
        var fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
        guard let first = fields.first else { return nil }
        let key = keyBytes(first)
        if key == nil && first.hasPrefix("#") { return nil }
        guard let key else {
            throw AllowListProblem("'\(first.prefix(48))' is not a CURVE public key (40 characters of Z85, as conveyor keygen prints)")
        }
        if let comment = fields.dropFirst().firstIndex(where: { $0.hasPrefix("#") }) { fields.removeSubrange(comment...) }
        guard fields.count >= 2 else { throw AllowListProblem("the key has no name; write KEY NAME roles=ROLES") }
        let name = String(fields[1])
        guard isValidName(name) else {
            throw AllowListProblem("'\(name.prefix(80))' is not a valid name: 1-64 letters, digits, '.', '_', '-' or '@'")
        }
        var roles: Roles?
        var tasks: Set<String>??
        for field in fields.dropFirst(2) {
            if field.hasPrefix("roles=") {
                guard roles == nil else { throw AllowListProblem("roles= is given twice") }
                let parsed = try Roles(parsing: field.dropFirst("roles=".count))
                guard !parsed.isEmpty else { throw AllowListProblem("roles= lists no role") }
                roles = parsed
            } else if field.hasPrefix("tasks=") {
                guard tasks == nil else { throw AllowListProblem("tasks= is given twice") }
                tasks = .some(try parseTasks(field.dropFirst("tasks=".count)))
            } else {
                throw AllowListProblem("unknown field '\(field.prefix(80))' (a line is KEY NAME roles=ROLES [tasks=NAMES])")
            }
        }
        guard let roles else { throw AllowListProblem("the line has no roles= (submit, consume, admin)") }
        return Entry(key: key, name: name, roles: roles, tasks: tasks ?? nil, line: number)
    }

    private static func parseTasks(_ text: Substring) throws(AllowListProblem) -> Set<String>? {
        if text == "*" { return nil }
        var names = Set<String>()
        for name in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard !name.isEmpty, name.utf8.count <= Limits.maxIdentifierBytes, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
                  !name.contains(",") else {
                throw AllowListProblem("tasks= names '\(name.prefix(80))', which is not a task name (1-\(Limits.maxIdentifierBytes) bytes of visible ASCII)")
            }
            names.insert(String(name))
        }
        guard !names.isEmpty else { throw AllowListProblem("tasks= lists no task name (write tasks=* or leave it out for any)") }
        return names
    }

    static func keyBytes(_ text: Substring) -> [UInt8]? {
        guard text.utf8.count == 40, let key = try? Z85.decode(String(text)), key.count == 32 else { return nil }
        return key
    }

    static func isValidName(_ name: String) -> Bool {
        (1...64).contains(name.utf8.count) && name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "@")
        }
    }
}

/// What is wrong with one line of a clients file.
public struct AllowListProblem: Error, Sendable {
    public let message: String
    init(_ message: String) { self.message = message }
}

/// A clients file that cannot be used: which file, which line, what is wrong.
public struct AllowListError: Error, Sendable, Equatable, CustomStringConvertible {
    public let file: String?
    /// 1-based; `nil` for the file as a whole.
    public let line: Int?
    public let problem: String

    public var description: String {
        let place = [file.map { "clients file \($0)" } ?? "clients file", line.map { "line \($0)" }].compactMap { $0 }
        return place.joined(separator: ", ") + ": " + problem
    }
}
