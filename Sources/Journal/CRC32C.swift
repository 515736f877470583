import CCRC32C

/// CRC-32C (Castagnoli), the checksum of every journal record: the polynomial iSCSI, ext4, Kafka
/// and LevelDB use for the same job, with better error detection than zlib's CRC-32 on short
/// records. Computed in C (Sources/CCRC32C): the CPU's `crc32` instruction where there is one
/// (x86-64 SSE 4.2), slicing-by-8 otherwise. It runs on the journal's writer thread and at
/// recovery, never on the broker's thread.
public enum CRC32C {
    /// The checksum of `bytes`, continuing from `crc` (the value of an earlier call, or 0).
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        conveyor_crc32c(crc, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}
