/// The release this build is: the one place the version number is written.
///
/// `scripts/release.sh` reads it from this file (the line `public static let number = "…"`), the
/// tarball is named after it, and a test checks that CHANGELOG.md has an entry for it. What a
/// major, minor or patch bump means for the CLI, the Swift API, the wire protocol and the journal
/// format is in CHANGELOG.md's header. The protocol versions are in ``ProtocolVersion``, the
/// journal format in `ConveyorJournal.SegmentHeader.currentVersion`; `conveyor --version` prints
/// all three.
public enum ConveyorVersion {
    /// Semantic version of this release, `MAJOR.MINOR.PATCH`.
    public static let number = "0.1.0"
}
