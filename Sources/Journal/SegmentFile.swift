#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One journal file open for writing, owned by one thread (the journal's writer, or a compaction).
final class SegmentFile {
    let path: String
    let number: UInt64
    private let descriptor: Int32
    /// Where the next record goes.
    private(set) var offset: Int

    /// Creates `path` with its header and `preallocate` bytes reserved (so that a full disk shows
    /// when a segment is created, not halfway through a record), and makes its directory entry
    /// durable.
    ///
    /// With `staged`, the file is prepared as `path` with `.journal` replaced by `.tmp` and renamed
    /// into place once its header is synced, so that a `kill -9` while it is being created never
    /// leaves a journal file without a header (the next start removes the `.tmp`).
    init(creating path: String, header: SegmentHeader, preallocate: Int, directory: String,
         staged: Bool = false) throws(JournalError) {
        self.path = path
        self.number = header.number
        let building = staged ? DataDirectory.stagingPath(for: path) : path
        let descriptor = open(building, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw .lastSystem("cannot create \(building)") }
        self.descriptor = descriptor
        offset = 0
        if preallocate > 0 {
            #if canImport(Glibc)
            let result = posix_fallocate(descriptor, 0, off_t(preallocate))
            // Some file systems cannot preallocate (EOPNOTSUPP, EINVAL): then the file just grows.
            if result != 0 && result != EOPNOTSUPP && result != EINVAL {
                close(descriptor)
                unlink(building)
                throw .system("cannot reserve \(preallocate) bytes for \(path)", errno: result)
            }
            #endif
        }
        do throws(JournalError) {
            try write(header.bytes)
            try sync()
            if staged, rename(building, path) != 0 { throw .lastSystem("cannot rename \(building) to \(path)") }
        } catch {
            close(descriptor)
            unlink(building)
            throw error
        }
        DataDirectory.syncDirectory(directory)
    }

    /// Opens the newest segment of an earlier run to go on writing it at `validEnd` (its torn
    /// tail, if any, already cut off), reserving its full size again.
    init(reopening path: String, number: UInt64, at validEnd: Int, preallocate: Int) throws(JournalError) {
        self.path = path
        self.number = number
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .lastSystem("cannot open \(path)") }
        self.descriptor = descriptor
        offset = validEnd
        #if canImport(Glibc)
        if preallocate > validEnd { _ = posix_fallocate(descriptor, 0, off_t(preallocate)) }
        #endif
    }

    /// Opens an existing segment to cut its torn tail off at `validEnd`.
    static func truncate(_ path: String, to validEnd: Int) throws(JournalError) {
        guard Glibc.truncate(path, off_t(validEnd)) == 0 else { throw .lastSystem("cannot cut the torn tail off \(path)") }
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        if descriptor >= 0 {
            _ = fsync(descriptor)
            close(descriptor)
        }
    }

    deinit { close(descriptor) }

    func write(_ bytes: [UInt8]) throws(JournalError) {
        try write(bytes, range: 0..<bytes.count)
    }

    func write(_ bytes: [UInt8], range: Range<Int>) throws(JournalError) {
        let failure: JournalError? = bytes.withUnsafeBytes { raw in
            do throws(JournalError) {
                try write(UnsafeRawBufferPointer(rebasing: raw[range]))
                return nil
            } catch {
                return error
            }
        }
        if let failure { throw failure }
    }

    /// Writes `bytes` at the current offset, all of them or an error. After an error the offset
    /// is unchanged: the next write overwrites whatever part of these bytes reached the file.
    func write(_ bytes: UnsafeRawBufferPointer) throws(JournalError) {
        var done = 0
        while done < bytes.count {
            let count = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset + done))
            if count < 0 {
                if errno == EINTR { continue }
                throw .lastSystem("cannot write \(path)")
            }
            done += count
        }
        offset += done
    }

    /// `fdatasync`: what was written is on stable storage.
    func sync() throws(JournalError) {
        #if canImport(Glibc)
        let result = fdatasync(descriptor)
        #else
        let result = fsync(descriptor)
        #endif
        guard result == 0 else { throw .lastSystem("cannot sync \(path)") }
    }

    /// `fsync`, for a snapshot before it is renamed into place (its size must be durable too).
    func syncAll() throws(JournalError) {
        guard fsync(descriptor) == 0 else { throw .lastSystem("cannot sync \(path)") }
    }
}
