import Foundation

/// Processes and their children, read from `/proc` on Linux. Elsewhere (no `/proc`) it knows no
/// children: ``descendants(of:)`` returns the pids it was given and ``statFields(pid:)`` `nil`.
public enum ProcessTree {
    /// The fields of /proc/PID/stat after the command name (field 3, the state, is index 0);
    /// `nil` for a process that has gone, or off Linux.
    public static func statFields(pid: Int32) -> [Substring]? {
        #if os(Linux)
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")")
        else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
        #else
        return nil
        #endif
    }

    /// `pids` and all their descendants (a supervising consumer's children), found by the parent
    /// pid in /proc/*/stat (/proc/PID/task/TID/children needs a kernel option not every kernel
    /// has, and lists only the children a given thread started). Off Linux: `pids` alone.
    public static func descendants(of pids: [Int32]) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        #if os(Linux)
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
            for entry in entries {
                guard let pid = Int32(entry), let fields = statFields(pid: pid), fields.count > 1,
                      let parent = Int32(fields[1]) else { continue }
                children[parent, default: []].append(pid)
            }
        }
        #endif
        var result: [Int32] = []
        var seen = Set<Int32>()
        var frontier = pids
        while let pid = frontier.popLast() {
            guard seen.insert(pid).inserted else { continue }
            result.append(pid)
            frontier += children[pid] ?? []
        }
        return result
    }
}
