#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The header at the start of every journal file (segment or snapshot), 32 bytes:
/// magic `CVYJ`, format version (u16), kind (u8), a reserved byte, the file's number (u64: a
/// segment's sequence number; for a snapshot the last segment it folds in), its creation time
/// (u64, wall-clock ns), 4 reserved bytes, and a CRC-32C of the 28 bytes before it. All
/// little-endian.
public struct SegmentHeader: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        case segment = 0, snapshot = 1
    }

    /// The format this broker writes. Readers take any version up to theirs and refuse later
    /// ones; docs/RELIABILITY.md ("Upgrade rules") says when it changes.
    public static let currentVersion: UInt16 = 1
    public static let size = 32
    static let magic: [UInt8] = Array("CVYJ".utf8)

    public var version: UInt16
    public var kind: Kind
    public var number: UInt64
    public var createdAt: UInt64

    public init(kind: Kind, number: UInt64, createdAt: UInt64, version: UInt16 = SegmentHeader.currentVersion) {
        self.version = version
        self.kind = kind
        self.number = number
        self.createdAt = createdAt
    }

    public var bytes: [UInt8] {
        var bytes = Self.magic
        withUnsafeBytes(of: version.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(kind.rawValue)
        bytes.append(0)
        withUnsafeBytes(of: number.littleEndian) { bytes.append(contentsOf: $0) }
        withUnsafeBytes(of: createdAt.littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: [0, 0, 0, 0])
        let crc = CRC32C.checksum(bytes)
        withUnsafeBytes(of: crc.littleEndian) { bytes.append(contentsOf: $0) }
        return bytes
    }

    /// Reads a header; the error says what is wrong in words an operator can act on.
    public init(_ raw: UnsafeRawBufferPointer) throws(JournalError) {
        guard raw.count >= Self.size else {
            throw .damaged("shorter than a journal header (\(raw.count) of \(Self.size) bytes)")
        }
        guard Array(raw[0..<4]) == Self.magic else { throw .damaged("not a Conveyor journal file (no CVYJ magic)") }
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 28, as: UInt32.self))
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<28])) == stored else {
            throw .damaged("its header's checksum does not match (the header is damaged)")
        }
        version = UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 4, as: UInt16.self))
        guard version <= Self.currentVersion else {
            throw .newerFormat(version)
        }
        guard let kind = Kind(rawValue: raw[6]) else { throw .damaged("unknown file kind \(raw[6])") }
        self.kind = kind
        number = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        createdAt = UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
    }
}

/// What went wrong with a data directory or a journal file.
public enum JournalError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A file that is not a journal file, or whose header is damaged.
    case damaged(String)
    /// A file written by a newer Conveyor, in a format this one does not read.
    case newerFormat(UInt16)
    /// A system call failed.
    case system(String, errno: Int32)
    /// The data directory is locked by another broker.
    case inUse(String)
    /// Damage in the middle of the journal: valid records follow the damaged bytes.
    case corrupt(String)

    public var description: String {
        switch self {
        case .damaged(let what): what
        case .newerFormat(let version):
            "journal format \(version) is newer than this conveyor's (\(SegmentHeader.currentVersion)): run the conveyor that wrote it, or a newer one"
        case .system(let what, let code): "\(what): \(String(cString: strerror(code)))"
        case .inUse(let what): what
        case .corrupt(let what): what
        }
    }

    /// The error of a failed system call, with `errno`.
    static func lastSystem(_ what: String) -> JournalError { .system(what, errno: errno) }
}

/// A record found in a file, with where it starts.
public struct LocatedRecord: Sendable {
    public let offset: Int
    public let record: JournalRecord
}

/// What a scan of one file found besides its records.
public enum ScanProblem: Sendable, Equatable {
    /// Bytes after the last complete record that hold no record: a write cut short by a crash,
    /// or garbage. Recovery drops them and says so.
    case tornTail(offset: Int, bytes: Int)
    /// A damaged record (at `offset`) with valid records after it (the first at `resumesAt`):
    /// not a torn write, damage. Recovery stops unless told to skip it.
    case corrupt(offset: Int, reason: String, resumesAt: Int)
}

/// One journal file's contents, read whole (mapped) and walked record by record.
public struct ScannedFile: Sendable {
    public let path: String
    public let header: SegmentHeader
    /// Offset just past the last complete record.
    public var validEnd: Int
    public var records: Int
    public var problems: [ScanProblem]
    /// Records of types this reader does not know but may skip.
    public var skipped: Int
}

public enum SegmentReader {
    /// The largest record a reader believes: a bound for lengths read from damaged bytes.
    static let maxRecordSize = 1 << 30

    /// Whether `path` is shorter than a header or starts with a header's worth of zeros: a file
    /// created (and perhaps preallocated) whose header was never written.
    static func isUnwritten(_ path: String) -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        var head = [UInt8](repeating: 0, count: SegmentHeader.size)
        let count = head.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, SegmentHeader.size) }
        guard count >= 0 else { return false }
        return count < SegmentHeader.size || head.allSatisfy { $0 == 0 }
    }

    /// Reads `path` and calls `body` with each record in order. A torn tail ends the scan; damage
    /// with valid records after it is reported (``ScanProblem/corrupt(offset:reason:resumesAt:)``)
    /// and, when `skipDamage`, skipped to the next valid record; otherwise the scan stops there.
    public static func scan(path: String, skipDamage: Bool = true,
                            _ body: (LocatedRecord) throws(JournalError) -> Void) throws(JournalError) -> ScannedFile {
        let file = try MappedFile(path: path)
        return try file.withBytes { raw throws(JournalError) -> ScannedFile in
            let header: SegmentHeader
            do throws(JournalError) {
                header = try SegmentHeader(raw)
            } catch {
                if case .newerFormat = error { throw error }
                throw .damaged("\(path): \(error)")
            }
            var scanned = ScannedFile(path: path, header: header, validEnd: SegmentHeader.size, records: 0, problems: [], skipped: 0)
            var offset = SegmentHeader.size
            while offset < raw.count {
                switch check(raw, at: offset) {
                case .end:
                    // A zero header: the preallocated space no record reached yet, which should
                    // be zeros to the end of the file.
                    if let garbage = firstNonZero(raw, from: offset) {
                        if let next = nextValid(raw, after: garbage) {
                            scanned.problems.append(.corrupt(offset: garbage, reason: "bytes after the end of the data", resumesAt: next))
                            guard skipDamage else { return scanned }
                            offset = next
                            continue
                        }
                        scanned.problems.append(.tornTail(offset: offset, bytes: lastNonZero(raw, after: offset) - offset))
                    }
                    return scanned
                case .bad(let reason):
                    if let next = nextValid(raw, after: offset) {
                        scanned.problems.append(.corrupt(offset: offset, reason: reason, resumesAt: next))
                        guard skipDamage else { return scanned }
                        offset = next
                        continue
                    }
                    scanned.problems.append(.tornTail(offset: offset, bytes: lastNonZero(raw, after: offset) - offset))
                    return scanned
                case .record(let type, let length):
                    let payload = UnsafeRawBufferPointer(rebasing: raw[(offset + 9)..<(offset + 8 + length)])
                    if JournalRecord.Kind(rawValue: type) == nil, type & JournalRecord.Kind.skippableBit != 0 {
                        scanned.skipped += 1
                    } else {
                        let record: JournalRecord
                        do {
                            record = try JournalRecord(type: type, payload: payload)
                        } catch {
                            throw .corrupt("\(path): record at offset \(offset) has a good checksum but cannot be read: \(error) (written by a newer conveyor?)")
                        }
                        try body(LocatedRecord(offset: offset, record: record))
                    }
                    offset += 8 + length
                    scanned.records += 1
                    scanned.validEnd = offset
                }
            }
            return scanned
        }
    }

    private enum Check {
        case end
        case bad(String)
        case record(type: UInt8, length: Int)
    }

    /// Whether a valid record starts at `offset`.
    private static func check(_ raw: UnsafeRawBufferPointer, at offset: Int) -> Check {
        guard raw.count - offset >= 8 else {
            return firstNonZero(raw, from: offset) == nil ? .end : .bad("a record header cut short")
        }
        let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
        if length == 0 && stored == 0 { return .end }
        guard length >= 1, length <= maxRecordSize, length <= raw.count - offset - 8 else {
            return .bad("a record length of \(length) bytes that does not fit the file")
        }
        let crc = JournalEncoder.checksum(lengthAt: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + 4)]),
                                          body: UnsafeRawBufferPointer(rebasing: raw[(offset + 8)..<(offset + 8 + length)]))
        guard crc == stored else { return .bad("a record whose checksum does not match") }
        return .record(type: raw[offset + 8], length: length)
    }

    /// The offset of the next valid record after `offset`, if any: what tells damage (records
    /// follow) from a torn tail (none do).
    private static func nextValid(_ raw: UnsafeRawBufferPointer, after offset: Int) -> Int? {
        var candidate = offset + 1
        while candidate + 9 <= raw.count {
            // Over preallocated zeros quickly: a record's length field is never zero.
            if raw[candidate] == 0, raw[candidate + 8] == 0 {
                guard let next = firstNonZero(raw, from: candidate + 8) else { return nil }
                candidate = max(candidate + 1, next - 8)
                continue
            }
            let type = raw[candidate + 8]
            if JournalRecord.Kind(rawValue: type) != nil || type & JournalRecord.Kind.skippableBit != 0,
               case .record = check(raw, at: candidate) {
                return candidate
            }
            candidate += 1
        }
        return nil
    }

    private static func firstNonZero(_ raw: UnsafeRawBufferPointer, from offset: Int) -> Int? {
        var index = offset
        // Eight bytes at a time through long runs of zeros.
        while index + 8 <= raw.count, raw.loadUnaligned(fromByteOffset: index, as: UInt64.self) == 0 { index += 8 }
        while index < raw.count {
            if raw[index] != 0 { return index }
            index += 1
        }
        return nil
    }

    /// The offset just past the last non-zero byte after `offset` (at least `offset + 1`).
    private static func lastNonZero(_ raw: UnsafeRawBufferPointer, after offset: Int) -> Int {
        var end = raw.count
        while end > offset + 1, end >= 8, raw.loadUnaligned(fromByteOffset: end - 8, as: UInt64.self) == 0 { end -= 8 }
        while end > offset + 1, raw[end - 1] == 0 { end -= 1 }
        return end
    }
}

/// A file mapped read-only for the duration of a scan.
final class MappedFile {
    let path: String
    private let descriptor: Int32
    private let size: Int
    private let address: UnsafeMutableRawPointer?

    init(path: String) throws(JournalError) {
        self.path = path
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .lastSystem("cannot open \(path)") }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else {
            let error = JournalError.lastSystem("cannot stat \(path)")
            close(descriptor)
            throw error
        }
        let size = Int(info.st_size)
        var address: UnsafeMutableRawPointer?
        if size > 0 {
            let mapped = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0)
            guard let mapped, mapped != MAP_FAILED else {
                let error = JournalError.lastSystem("cannot map \(path)")
                close(descriptor)
                throw error
            }
            address = mapped
        }
        self.descriptor = descriptor
        self.size = size
        self.address = address
    }

    deinit {
        if let address { munmap(address, size) }
        close(descriptor)
    }

    func withBytes<T>(_ body: (UnsafeRawBufferPointer) throws(JournalError) -> T) throws(JournalError) -> T {
        try body(UnsafeRawBufferPointer(start: address, count: size))
    }
}
