public import ConveyorProtocol

/// Appends journal records to a byte buffer, in the record layout (docs/RELIABILITY.md): a
/// 4-byte little-endian length of what follows the checksum, a 4-byte CRC-32C, a type byte, the
/// fields. Runs on the broker's thread, once per transition, so it only appends: the checksums
/// are filled in later by ``JournalEncoder/sealChecksums(_:from:)`` on the writer's thread.
public struct JournalEncoder: Sendable {
    public private(set) var bytes: [UInt8] = []
    /// Records appended since the last ``take()``.
    public private(set) var records = 0
    private var start = 0

    /// Bytes before a record's type: length and checksum.
    public static let recordHeaderSize = 8

    public init(capacity: Int = 1 << 16) { bytes.reserveCapacity(capacity) }

    public var isEmpty: Bool { bytes.isEmpty }

    /// The bytes so far (checksums not yet filled), leaving the encoder empty with its capacity.
    public mutating func take(into other: inout [UInt8]) -> Int {
        if other.isEmpty {
            swap(&bytes, &other)
        } else {
            other.append(contentsOf: bytes)
        }
        bytes.removeAll(keepingCapacity: true)
        defer { records = 0 }
        return records
    }

    // MARK: Records

    public mutating func accepted(id: String, name: String, args: [UInt8], options: TaskOptions, producer: [UInt8],
                                  sequence: UInt64, deadline: UInt64) {
        begin(.accepted)
        putString(id); putString(name); putBytes(args); putOptions(options); putBytes(producer)
        putU64(sequence); putU64(deadline)
        end()
    }

    public mutating func rerouted(id: String, producer: [UInt8]) {
        begin(.rerouted); putString(id); putBytes(producer); end()
    }

    public mutating func dispatched(id: String, attempts: UInt32) {
        begin(.dispatched); putString(id); putU32(attempts); end()
    }

    public mutating func queued(id: String, attempts: UInt32) {
        begin(.queued); putString(id); putU32(attempts); end()
    }

    public mutating func delayed(id: String, attempts: UInt32, notBefore: UInt64) {
        begin(.delayed); putString(id); putU32(attempts); putU64(notBefore); end()
    }

    public mutating func finished(id: String, status: TaskStatus, body: [UInt8], info: [UInt8], finishedAt: UInt64) {
        begin(.finished); putString(id); putResult(status, body, info, finishedAt); end()
    }

    public mutating func evicted(id: String) {
        begin(.evicted); putString(id); end()
    }

    public mutating func deadLettered(id: String, name: String, attempts: UInt32, reason: String, args: [UInt8],
                                      options: TaskOptions, producer: [UInt8]) {
        begin(.deadLettered)
        putString(id); putString(name); putU32(attempts); putString(reason); putBytes(args); putOptions(options); putBytes(producer)
        end()
    }

    public mutating func owned(id: String, owner: String) {
        begin(.owned); putString(id); putString(owner); end()
    }

    public mutating func paused(name: String) {
        begin(.paused); putString(name); end()
    }

    public mutating func resumed(name: String) {
        begin(.resumed); putString(name); end()
    }

    public mutating func limit(name: String, json: [UInt8]) {
        begin(.limit); putString(name); putBytes(json); end()
    }

    public mutating func schedule(id: String, json: [UInt8], args: [UInt8]) {
        begin(.schedule); putString(id); putBytes(json); putBytes(args); end()
    }

    public mutating func deadLettersTaken(id: String) {
        begin(.deadLettersTaken); putString(id); end()
    }

    public mutating func task(_ entry: TaskEntry) {
        begin(.task)
        putString(entry.id); putString(entry.name); putBytes(entry.args); putOptions(entry.options); putBytes(entry.producer)
        putU64(entry.sequence); putU64(entry.deadline)
        putU8(entry.state.rawValue); putU32(entry.attempts); putU64(entry.notBefore)
        if let result = entry.result {
            putU8(1)
            putResult(result.status, result.body, result.info, result.finishedAt)
        } else {
            putU8(0)
        }
        end()
    }

    public mutating func deadLetter(_ letter: DeadLetterEntry) {
        deadLettered(id: letter.id, name: letter.name, attempts: letter.attempts, reason: letter.reason,
                     args: letter.args, options: letter.options, producer: letter.producer)
    }

    /// Appends `record` (any kind; the hot path calls the typed methods above).
    public mutating func append(_ record: JournalRecord) {
        switch record {
        case .accepted(let task):
            accepted(id: task.id, name: task.name, args: task.args, options: task.options, producer: task.producer,
                     sequence: task.sequence, deadline: task.deadline)
        case .rerouted(let id, let producer): rerouted(id: id, producer: producer)
        case .dispatched(let id, let attempts): dispatched(id: id, attempts: attempts)
        case .queued(let id, let attempts): queued(id: id, attempts: attempts)
        case .delayed(let id, let attempts, let notBefore): delayed(id: id, attempts: attempts, notBefore: notBefore)
        case .finished(let id, let result):
            finished(id: id, status: result.status, body: result.body, info: result.info, finishedAt: result.finishedAt)
        case .evicted(let id): evicted(id: id)
        case .deadLettered(let letter): deadLetter(letter)
        case .deadLettersTaken(let id): deadLettersTaken(id: id)
        case .task(let entry): task(entry)
        case .owned(let id, let owner): owned(id: id, owner: owner)
        case .paused(let name): paused(name: name)
        case .resumed(let name): resumed(name: name)
        case .limit(let name, let json): limit(name: name, json: json)
        case .schedule(let id, let json, let args): schedule(id: id, json: json, args: args)
        }
    }

    // MARK: Checksums

    /// Fills in the length-covering CRC-32C of every record in `buffer` from offset `start` on.
    public static func sealChecksums(_ buffer: inout [UInt8], from start: Int = 0) {
        buffer.withUnsafeMutableBytes { raw in
            var offset = start
            while offset + recordHeaderSize <= raw.count {
                let length = Int(raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self).littleEndian)
                let body = UnsafeRawBufferPointer(rebasing: raw[(offset + recordHeaderSize)..<(offset + recordHeaderSize + length)])
                let crc = checksum(lengthAt: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + 4)]), body: body)
                raw.storeBytes(of: crc.littleEndian, toByteOffset: offset + 4, as: UInt32.self)
                offset += recordHeaderSize + length
            }
        }
    }

    /// A record's checksum: over its length field and its body (type and fields), so that a
    /// damaged length is caught too.
    static func checksum(lengthAt length: UnsafeRawBufferPointer, body: UnsafeRawBufferPointer) -> UInt32 {
        CRC32C.checksum(body, continuing: CRC32C.checksum(length))
    }

    // MARK: Fields

    private mutating func begin(_ kind: JournalRecord.Kind) {
        start = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: Self.recordHeaderSize))
        bytes.append(kind.rawValue)
    }

    private mutating func end() {
        let length = UInt32(bytes.count - start - Self.recordHeaderSize)
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: length.littleEndian, toByteOffset: start, as: UInt32.self) }
        records += 1
    }

    private mutating func putU8(_ value: UInt8) { bytes.append(value) }

    private mutating func putU32(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func putU64(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func putBytes(_ value: [UInt8]) {
        putU32(UInt32(value.count))
        bytes.append(contentsOf: value)
    }

    private mutating func putString(_ value: String) {
        let done: Void? = value.utf8.withContiguousStorageIfAvailable { utf8 in
            putU32(UInt32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
        if done == nil {
            putU32(UInt32(value.utf8.count))
            bytes.append(contentsOf: value.utf8)
        }
    }

    private mutating func putOptions(_ value: TaskOptions) {
        let count = value.encodedCount(for: .v3)
        putU32(UInt32(count))
        value.append(to: &bytes, version: .v3)
    }

    private mutating func putResult(_ status: TaskStatus, _ body: [UInt8], _ info: [UInt8], _ finishedAt: UInt64) {
        putString(status.rawValue); putBytes(body); putBytes(info); putU64(finishedAt)
    }
}

// MARK: Reading

/// Why a record's body could not be read.
public struct RecordDecodingError: Error, CustomStringConvertible, Sendable {
    public let description: String
}

extension JournalRecord {
    /// Reads a record's body: `type` and the fields after it. Throws on a body that does not fit
    /// its type (which a good checksum makes a bug or a newer writer, never a torn write).
    public init(type: UInt8, payload: UnsafeRawBufferPointer) throws(RecordDecodingError) {
        guard let kind = Kind(rawValue: type) else {
            throw RecordDecodingError(description: "unknown record type \(type)")
        }
        var reader = FieldReader(payload)
        switch kind {
        case .accepted:
            self = .accepted(TaskEntry(id: try reader.string(), name: try reader.string(), args: try reader.bytes(),
                                       options: try reader.options(), producer: try reader.bytes(),
                                       sequence: try reader.u64(), deadline: try reader.u64()))
        case .rerouted: self = .rerouted(id: try reader.string(), producer: try reader.bytes())
        case .dispatched: self = .dispatched(id: try reader.string(), attempts: try reader.u32())
        case .queued: self = .queued(id: try reader.string(), attempts: try reader.u32())
        case .delayed: self = .delayed(id: try reader.string(), attempts: try reader.u32(), notBefore: try reader.u64())
        case .finished: self = .finished(id: try reader.string(), result: try reader.result())
        case .evicted: self = .evicted(id: try reader.string())
        case .deadLettered:
            self = .deadLettered(DeadLetterEntry(id: try reader.string(), name: try reader.string(), attempts: try reader.u32(),
                                                 reason: try reader.string(), args: try reader.bytes(),
                                                 options: try reader.options(), producer: try reader.bytes()))
        case .deadLettersTaken: self = .deadLettersTaken(id: try reader.string())
        case .task:
            var entry = TaskEntry(id: try reader.string(), name: try reader.string(), args: try reader.bytes(),
                                  options: try reader.options(), producer: try reader.bytes(),
                                  sequence: try reader.u64(), deadline: try reader.u64())
            guard let state = TaskEntryState(rawValue: try reader.u8()) else {
                throw RecordDecodingError(description: "unknown task state in a task record")
            }
            entry.state = state
            entry.attempts = try reader.u32()
            entry.notBefore = try reader.u64()
            if try reader.u8() == 1 { entry.result = try reader.result() }
            self = .task(entry)
        case .owned: self = .owned(id: try reader.string(), owner: try reader.string())
        case .paused: self = .paused(name: try reader.string())
        case .resumed: self = .resumed(name: try reader.string())
        case .limit: self = .limit(name: try reader.string(), json: try reader.bytes())
        case .schedule: self = .schedule(id: try reader.string(), json: try reader.bytes(), args: try reader.bytes())
        }
        guard reader.isAtEnd else {
            throw RecordDecodingError(description: "\(kind.name) record has \(reader.remaining) bytes too many")
        }
    }
}

/// Reads the fields of one record's body.
struct FieldReader {
    private let raw: UnsafeRawBufferPointer
    private var offset = 0

    init(_ raw: UnsafeRawBufferPointer) { self.raw = raw }

    var isAtEnd: Bool { offset == raw.count }
    var remaining: Int { raw.count - offset }

    private mutating func take(_ count: Int) throws(RecordDecodingError) -> UnsafeRawBufferPointer {
        guard count >= 0, count <= remaining else {
            throw RecordDecodingError(description: "record ends inside a field (\(count) bytes wanted, \(remaining) left)")
        }
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + count)])
    }

    mutating func u8() throws(RecordDecodingError) -> UInt8 { try take(1)[0] }

    mutating func u32() throws(RecordDecodingError) -> UInt32 {
        UInt32(littleEndian: try take(4).loadUnaligned(as: UInt32.self))
    }

    mutating func u64() throws(RecordDecodingError) -> UInt64 {
        UInt64(littleEndian: try take(8).loadUnaligned(as: UInt64.self))
    }

    mutating func bytes() throws(RecordDecodingError) -> [UInt8] {
        Array(try take(Int(try u32())))
    }

    mutating func string() throws(RecordDecodingError) -> String {
        String(decoding: try take(Int(try u32())), as: UTF8.self)
    }

    mutating func options() throws(RecordDecodingError) -> TaskOptions {
        let field = try take(Int(try u32()))
        do {
            return try TaskOptions(field: field, version: .v3)
        } catch {
            throw RecordDecodingError(description: "task options: \(error)")
        }
    }

    mutating func result() throws(RecordDecodingError) -> ResultEntry {
        ResultEntry(status: TaskStatus(wire: try string()), body: try bytes(), info: try bytes(), finishedAt: try u64())
    }
}

extension JournalRecord {
    /// Every record in `buffer` (records as a journal file holds them after its header, checksums
    /// filled in), checked and decoded; for tests and tools that hold records in memory.
    public static func decodeAll(_ buffer: [UInt8]) throws(RecordDecodingError) -> [JournalRecord] {
        var records: [JournalRecord] = []
        var failure: RecordDecodingError?
        buffer.withUnsafeBytes { raw in
            var offset = 0
            while offset + JournalEncoder.recordHeaderSize < raw.count {
                let length = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
                let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
                let end = offset + JournalEncoder.recordHeaderSize + length
                guard length >= 1, end <= raw.count else {
                    failure = RecordDecodingError(description: "record at offset \(offset) runs past the buffer")
                    return
                }
                let body = UnsafeRawBufferPointer(rebasing: raw[(offset + JournalEncoder.recordHeaderSize)..<end])
                guard JournalEncoder.checksum(lengthAt: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + 4)]), body: body) == stored else {
                    failure = RecordDecodingError(description: "record at offset \(offset) fails its checksum")
                    return
                }
                do throws(RecordDecodingError) {
                    records.append(try JournalRecord(type: body[0], payload: UnsafeRawBufferPointer(rebasing: body.dropFirst())))
                } catch {
                    failure = error
                    return
                }
                offset = end
            }
        }
        if let failure { throw failure }
        return records
    }
}
