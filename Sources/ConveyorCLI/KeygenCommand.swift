import ConveyorSystem
import ArgumentParser
import ConveyorWorker
import Foundation
import ZeroMQ

/// `conveyor keygen`: a CURVE key pair, for a broker or for one of its clients.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen",
        abstract: "Make a CURVE key pair: a broker's, or a producer's or consumer's for the broker's clients file.",
        discussion: """
            With --output FILE, writes 'public-key Z85' and 'secret-key Z85' to FILE, readable by its \
            owner only (mode 0600), never over an existing file, and prints the public key. Without it, \
            prints both lines (a file they are redirected to is made mode 0600). Start a broker with \
            --curve-secret-file FILE and give its public key to its clients (--curve-server-key); a \
            client uses its own file with --curve-secret-file and its public key goes on the broker's \
            clients file (docs/SECURITY.md).
            """)

    @Option(help: "Write the key pair to this new file (mode 0600); refuses a file that exists.")
    var output: String?

    func run() throws {
        let keys = try CurveKeyPair.generate()
        let publicLine = "public-key \(try Z85.encode(keys.publicKey))"
        let text = publicLine + "\n" + "secret-key \(try Z85.encode(keys.secretKey))" + "\n"
        guard let output else {
            // `conveyor keygen > FILE`: the shell made FILE with the umask's mode, often readable
            // by everyone. Only its owner should read a secret key.
            var status = stat()
            if fstat(STDOUT_FILENO, &status) == 0, (status.st_mode & 0o170000) == 0o100000, status.st_mode & 0o077 != 0 {
                if fchmod(STDOUT_FILENO, 0o600) == 0 {
                    printError("note: the file standard output goes to is now readable by its owner only (mode 0600)")
                } else {
                    printError("warning: standard output is a file others can read, and its mode could not be changed: keep the secret key private (chmod 600)")
                }
            }
            FileHandle.standardOutput.write(Data(text.utf8))
            return
        }
        do {
            try Self.writeNew(output, text)
        } catch let error as KeyFileError {
            printError("error: \(error.message)")
            throw ExitCode.failure
        }
        printLine(publicLine)
        printError("wrote the key pair to \(output) (mode 0600); give the public key above to the broker's clients file or to its clients")
    }

    /// Creates `path` with mode 0600 and writes `text`; never replaces an existing file.
    static func writeNew(_ path: String, _ text: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST {
                throw KeyFileError("\(path) exists: conveyor keygen never overwrites a key file (remove it first, or choose another name)")
            }
            throw KeyFileError("cannot create \(path): \(String(cString: strerror(code)))")
        }
        defer { close(fd) }
        // The umask can only narrow 0600; make it exactly that.
        _ = fchmod(fd, 0o600)
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let count = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw KeyFileError("cannot write \(path): \(String(cString: strerror(errno)))") }
            written += count
        }
        guard fsync(fd) == 0 else { throw KeyFileError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }
}

/// A key file that could not be written.
struct KeyFileError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}

