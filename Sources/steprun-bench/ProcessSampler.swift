import Foundation
import StepRunCore
import Synchronization

/// CPU time and memory read from /proc (Linux), to say where a run's time went.
///
/// Per-process CPU comes from `/proc/PID/stat`, which is not disturbed by other work on the machine;
/// `other` is whatever else kept the CPUs busy (a compile next door), so a noisy run shows itself.
enum ProcStat {
    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// Fields after the command name of /proc/PID/stat (field 3 `state` is index 0).
    static func statFields(_ pid: Int32) -> [Substring]? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return nil }
        return text[text.index(after: close)...].split(separator: " ")
    }

    /// utime + stime (+ cutime + cstime when `children`), in clock ticks.
    static func cpuTicks(_ pid: Int32, includingReapedChildren children: Bool = false) -> Int? {
        guard let fields = statFields(pid), fields.count > 14 else { return nil }
        // index 11 utime, 12 stime, 13 cutime, 14 cstime (fields 14–17 of proc(5)).
        var ticks = (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
        if children { ticks += (Int(fields[13]) ?? 0) + (Int(fields[14]) ?? 0) }
        return ticks
    }

    static func parent(_ pid: Int32) -> Int32? {
        guard let fields = statFields(pid), fields.count > 1 else { return nil }
        return Int32(fields[1])
    }

    /// CPU of a process tree one level deep: the parent, its live children, and children it reaped.
    ///
    /// Postgres forks a backend per connection and reaps it when it exits, so a backend that ends
    /// between two samples still shows up in the postmaster's cutime/cstime.
    static func treeTicks(_ root: Int32, children: [Int32]) -> Int? {
        guard let own = cpuTicks(root, includingReapedChildren: true) else { return nil }
        return children.reduce(own) { $0 + (cpuTicks($1) ?? 0) }
    }

    /// The live children of a process.
    static func children(of root: Int32) -> [Int32] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { entry in
            guard let pid = Int32(entry), pid != root, parent(pid) == root else { return nil }
            return pid
        }
    }

    /// Voluntary plus involuntary context switches of each live thread of a process, by thread id.
    static func threadContextSwitches(_ pid: Int32) -> [Int32: Int]? {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task") else { return nil }
        var counts: [Int32: Int] = [:]
        for task in tasks {
            guard let tid = Int32(task),
                let text = try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/status", encoding: .utf8)
            else { continue }
            var total = 0
            for line in text.split(separator: "\n") where line.contains("ctxt_switches:") {
                total += Int(line.split(separator: "\t").last?.trimmingCharacters(in: .whitespaces) ?? "") ?? 0
            }
            counts[tid] = total
        }
        return counts
    }

    /// Switches made between two samples by the threads alive at the second one.
    ///
    /// A thread that exited in between (a Dispatch worker, a Postgres backend) is missed, so this is
    /// a lower bound; it never goes negative.
    static func switchesBetween(_ first: [Int32: Int]?, _ last: [Int32: Int]?) -> Int? {
        guard let first, let last else { return nil }
        return last.reduce(0) { total, entry in total + max(0, entry.value - (first[entry.key] ?? 0)) }
    }

    /// Busy, interrupt and total ticks of the whole machine, from /proc/stat.
    static func hostTicks() -> HostTicks? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first, line.hasPrefix("cpu ")
        else { return nil }
        let values = line.split(separator: " ").dropFirst().compactMap { Int($0) }
        guard values.count >= 5 else { return nil }
        // user nice system idle iowait irq softirq steal …; guest time is already inside user.
        let total = values.prefix(8).reduce(0, +)
        let interrupts = values.count >= 7 ? values[5] + values[6] : 0
        let steal = values.count >= 8 ? values[7] : 0
        return HostTicks(busy: total - values[3] - values[4], interrupts: interrupts, steal: steal, total: total)
    }

    struct HostTicks {
        var busy: Int
        /// irq + softirq: time the kernel charges to no process (loopback TCP is mostly softirq).
        var interrupts: Int
        /// Time a virtual CPU wanted to run but the hypervisor ran something else (another guest).
        var steal: Int
        var total: Int
    }

    /// Resident set size (VmRSS) in KiB.
    static func residentKiB(_ pid: Int32) -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }
}

/// Where the CPU went during the measured window, in cores (1.0 = one CPU busy the whole time).
struct CPUUsage: Sendable, Codable {
    var bench: Double
    var daemon: Double?
    var postgres: Double?
    /// Interrupt and softirq time, charged to no process: mostly the loopback network stack.
    var interrupts: Double
    /// Time the virtual CPUs were ready to run but the hypervisor gave their host CPU to another
    /// guest (`steal` in /proc/stat). On a crowded host this is large, and every process's
    /// latency suffers while the per-process CPU times above stay roughly honest.
    var steal: Double
    /// Busy CPU not accounted for by the above: other work on this machine. Large values mean the
    /// run competed with something else (a compile next door) and its figures are suspect.
    var other: Double
    var idle: Double
}

/// Context switches per second during the measured window, by process (Postgres: all backends).
struct ContextSwitchRates: Sendable, Codable {
    var bench: Double?
    var daemon: Double?
    var postgres: Double?
}

/// What the sampler observed during one run's measured window.
struct SystemObservation: Sendable {
    var cpu: CPUUsage?
    var contextSwitches: ContextSwitchRates?
    var daemonRSSPeakKiB: Int?
    var daemonRSSMeanKiB: Int?
}

/// Samples the processes of interest on its own thread: once at the start of the measured window,
/// every 100 ms during it (daemon RSS) and once at its end.
final class SystemSampler: Sendable {
    let daemonPID: Int32?
    let postgresPID: Int32?
    private let result = Mutex<SystemObservation?>(nil)
    private let running = DispatchGroup()

    init(daemonPID: Int32?, postgresPID: Int32?) {
        self.daemonPID = daemonPID
        self.postgresPID = postgresPID
    }

    private struct Snapshot {
        var at: ContinuousClock.Instant
        var bench: Int?
        var daemon: Int?
        var postgres: Int?
        var host: ProcStat.HostTicks?
        var benchSwitches: [Int32: Int]?
        var daemonSwitches: [Int32: Int]?
        var postgresSwitches: [Int32: Int]?
    }

    private func snapshot() -> Snapshot {
        let backends = postgresPID.map { ProcStat.children(of: $0) } ?? []
        return Snapshot(
            at: .now, bench: ProcStat.cpuTicks(getpid()), daemon: daemonPID.flatMap { ProcStat.cpuTicks($0) },
            postgres: postgresPID.flatMap { ProcStat.treeTicks($0, children: backends) }, host: ProcStat.hostTicks(),
            benchSwitches: ProcStat.threadContextSwitches(getpid()),
            daemonSwitches: daemonPID.flatMap { ProcStat.threadContextSwitches($0) },
            postgresSwitches: postgresPID == nil
                ? nil : backends.reduce(into: [:]) { $0.merge(ProcStat.threadContextSwitches($1) ?? [:]) { first, _ in first } })
    }

    /// Starts sampling for `window` on a new thread.
    func start(_ window: RunWindow) {
        running.enter()
        let thread = Thread { [self] in
            sleep(until: window.measureFrom)
            let first = snapshot()
            var rss: [Int] = []
            while ContinuousClock.now < window.end {
                if let daemonPID, let kib = ProcStat.residentKiB(daemonPID) { rss.append(kib) }
                sleep(until: min(window.end, ContinuousClock.now.advanced(by: .milliseconds(100))))
            }
            let last = snapshot()
            if let daemonPID, let kib = ProcStat.residentKiB(daemonPID) { rss.append(kib) }
            result.withLock { $0 = Self.observation(first, last, rss: rss) }
            running.leave()
        }
        thread.name = "steprun-bench-sampler"
        thread.start()
    }

    /// Waits for the sampler to take its last sample (shortly after the window ends); may be called again.
    func finish() async -> SystemObservation {
        await wait(running)
        return result.withLock { $0 } ?? SystemObservation()
    }

    private static func observation(_ first: Snapshot, _ last: Snapshot, rss: [Int]) -> SystemObservation {
        var observation = SystemObservation()
        if !rss.isEmpty {
            observation.daemonRSSPeakKiB = rss.max()
            observation.daemonRSSMeanKiB = rss.reduce(0, +) / rss.count
        }
        let wall = (last.at - first.at).inSeconds
        guard wall > 0, let hostFirst = first.host, let hostLast = last.host, let benchFirst = first.bench, let benchLast = last.bench
        else { return observation }
        func cores(_ ticks: Int) -> Double { Double(ticks) / ProcStat.ticksPerSecond / wall }
        func rate(_ count: Int) -> Double { Double(count) / wall }
        observation.contextSwitches = ContextSwitchRates(
            bench: ProcStat.switchesBetween(first.benchSwitches, last.benchSwitches).map(rate),
            daemon: ProcStat.switchesBetween(first.daemonSwitches, last.daemonSwitches).map(rate),
            postgres: ProcStat.switchesBetween(first.postgresSwitches, last.postgresSwitches).map(rate))
        let cpuCount = Double(hostLast.total - hostFirst.total) / ProcStat.ticksPerSecond / wall
        let busy = cores(hostLast.busy - hostFirst.busy)
        let bench = cores(benchLast - benchFirst)
        let daemon = delta(first.daemon, last.daemon).map(cores)
        let postgres = delta(first.postgres, last.postgres).map(cores)
        let interrupts = cores(hostLast.interrupts - hostFirst.interrupts)
        let steal = cores(hostLast.steal - hostFirst.steal)
        let other = max(0, busy - bench - (daemon ?? 0) - (postgres ?? 0) - interrupts - steal)
        observation.cpu = CPUUsage(
            bench: bench, daemon: daemon, postgres: postgres, interrupts: interrupts, steal: steal, other: other, idle: max(0, cpuCount - busy))
        return observation
    }
}

private func delta(_ first: Int?, _ last: Int?) -> Int? {
    guard let first, let last else { return nil }
    return last - first
}

/// Blocks the current thread until `instant` (used only on threads the bench owns).
func sleep(until instant: ContinuousClock.Instant) {
    let remaining = instant - .now
    guard remaining > .zero else { return }
    let seconds = remaining.inSeconds
    Thread.sleep(forTimeInterval: seconds)
}
