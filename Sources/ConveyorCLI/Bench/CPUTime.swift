import ConveyorTesting
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The CPU time (user + system) of every process of a benchmark run: the benchmark process itself
/// (the producer), the broker, and each consumer process (a supervising consumer's children
/// included). Sample once when the timed window opens and once when it closes (before the cluster
/// is torn down); ``report(since:tasks:wallSeconds:)`` divides the difference by the tasks.
///
/// This process's own time comes from `getrusage(RUSAGE_SELF)` (microseconds, all threads). A
/// child's user and system split comes from `/proc/PID/stat` (`utime`, `stime`, in clock ticks of
/// `sysconf(_SC_CLK_TCK)`, 10 ms here); its total comes from its CPU clock
/// (`clock_getcpuclockid`, nanoseconds, the same quantity the kernel splits into `utime`+`stime`),
/// so that a window of half a second is not measured to ±2 %. Linux only: elsewhere every sample
/// is empty and no report is made.
struct CPUProbe: Sendable {
    struct Member: Sendable {
        /// "producer", "broker" or "consumer".
        let role: String
        /// 0 for this process.
        let pid: Int32
    }

    /// One process's CPU time at one moment, in seconds.
    struct Times: Sendable {
        var user: Double
        var system: Double
        /// user + system, as precisely as the OS gives it.
        var total: Double
    }

    let members: [Member]

    /// The benchmark process, and the cluster's broker and consumer processes as they are now
    /// (children of a supervising consumer included).
    init(cluster: Cluster?) {
        var members = [Member(role: "producer", pid: 0)]
        if let cluster {
            // A process that has gone is left out by `sample()`.
            if let broker = cluster.broker { members.append(Member(role: "broker", pid: broker.pid)) }
            for pid in ProcessTree.descendants(of: cluster.consumers.map(\.pid)) {
                members.append(Member(role: "consumer", pid: pid))
            }
        }
        self.members = members
    }

    /// Every member's CPU time now, by pid (0 for this process); a process that has gone is missing.
    func sample() -> [Int32: Times] {
        var times: [Int32: Times] = [:]
        for member in members {
            if let t = member.pid == 0 ? Self.ownTimes() : Self.times(of: member.pid) { times[member.pid] = t }
        }
        return times
    }

    /// The CPU time since `before`, per process and in all, divided by `tasks`.
    func report(since before: [Int32: Times], tasks: Int, wallSeconds: Double) -> CPUReport? {
        let after = sample()
        guard !before.isEmpty, tasks > 0 else { return nil }
        var processes: [CPUReport.Process] = []
        for member in members {
            guard let start = before[member.pid], let end = after[member.pid] else { continue }
            let seconds = max(0, end.total - start.total)
            processes.append(.init(
                role: member.role, pid: member.pid == 0 ? Int32(getpid()) : member.pid,
                userSeconds: max(0, end.user - start.user), systemSeconds: max(0, end.system - start.system),
                seconds: seconds, microsecondsPerTask: seconds * 1e6 / Double(tasks)))
        }
        let total = processes.map(\.seconds).reduce(0, +)
        var byRole: [String: Double] = [:]
        for process in processes { byRole[process.role, default: 0] += process.microsecondsPerTask }
        return CPUReport(tasks: tasks, wallSeconds: wallSeconds, seconds: total,
                         microsecondsPerTask: total * 1e6 / Double(tasks), byRole: byRole,
                         cores: wallSeconds > 0 ? total / wallSeconds : 0, processes: processes)
    }

    private static func ownTimes() -> Times? {
        #if os(Linux)
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return nil }
        let user = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        let system = Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
        return Times(user: user, system: system, total: user + system)
        #else
        return nil
        #endif
    }

    private static func times(of pid: Int32) -> Times? {
        #if os(Linux)
        guard let fields = ProcessTree.statFields(pid: pid), fields.count > 12,
              let utime = Double(fields[11]), let stime = Double(fields[12])
        else { return nil }
        let tick = Double(sysconf(Int32(_SC_CLK_TCK)))
        let user = utime / tick, system = stime / tick
        var clock = clockid_t()
        var now = timespec()
        if clock_getcpuclockid(pid, &clock) == 0, clock_gettime(clock, &now) == 0 {
            return Times(user: user, system: system, total: Double(now.tv_sec) + Double(now.tv_nsec) / 1e9)
        }
        return Times(user: user, system: system, total: user + system)
        #else
        return nil
        #endif
    }
}

/// CPU time of the timed window of one workload, for `--json` and the table.
struct CPUReport: Codable, Sendable {
    struct Process: Codable, Sendable {
        var role: String
        var pid: Int32
        var userSeconds: Double
        var systemSeconds: Double
        /// user + system (precise; see ``CPUProbe``).
        var seconds: Double
        var microsecondsPerTask: Double
    }

    /// The tasks the CPU time is divided by (those that completed in the window).
    var tasks: Int
    /// The length of the window.
    var wallSeconds: Double
    /// CPU seconds of all processes in the window.
    var seconds: Double
    /// All processes' CPU per task.
    var microsecondsPerTask: Double
    /// CPU per task by role ("producer", "broker", "consumer": the sum of that role's processes).
    var byRole: [String: Double]
    /// `seconds / wallSeconds`: how many cores were busy on average.
    var cores: Double
    var processes: [Process]

    var summary: String {
        let roles = ["producer", "broker", "consumer"].compactMap { role in
            byRole[role].map { String(format: "%@ %.2f", role, $0) }
        }
        return String(format: "CPU %.2f µs per task (%@), %.2f cores busy", microsecondsPerTask,
                      roles.joined(separator: ", "), cores)
    }
}

/// Processes and their children, from /proc.
enum ProcessTree {
    /// The fields of /proc/PID/stat after the command name (field 3, the state, is index 0).
    static func statFields(pid: Int32) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")")
        else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// `pids` and all their descendants (a supervising consumer's children), found by the parent
    /// pid in /proc/*/stat (/proc/PID/task/TID/children needs a kernel option this machine lacks,
    /// and lists only the children a given thread started).
    static func descendants(of pids: [Int32]) -> [Int32] {
        var children: [Int32: [Int32]] = [:]
        if let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") {
            for entry in entries {
                guard let pid = Int32(entry), let fields = statFields(pid: pid), fields.count > 1,
                      let parent = Int32(fields[1]) else { continue }
                children[parent, default: []].append(pid)
            }
        }
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
