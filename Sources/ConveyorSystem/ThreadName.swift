#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Names the calling thread in the OS, as `top -H`, `perf` and debuggers show it. Linux keeps the
/// first 15 bytes. (Glibc's `pthread_setname_np` is not visible to Swift, and Foundation's
/// `Thread.name` does not always reach the OS on Linux, so this writes `/proc/thread-self/comm`.)
public func setCurrentThreadName(_ name: String) {
    let truncated = String(decoding: Array(name.utf8.prefix(15)), as: UTF8.self)
    #if os(Linux)
    let fd = open("/proc/thread-self/comm", O_WRONLY)
    guard fd >= 0 else { return }
    _ = truncated.withCString { write(fd, $0, strlen($0)) }
    close(fd)
    #elseif canImport(Darwin)
    _ = pthread_setname_np(truncated)
    #endif
}
