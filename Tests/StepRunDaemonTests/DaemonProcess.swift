#if canImport(Glibc)
import Glibc
#endif
import Foundation
import StepRunCore
import Synchronization
import StepRunTesting

/// The built `steprund` (and friends) run as real child processes.
enum Binaries {
    /// `.build/<triple>/debug`, found from this file's location.
    static let directory: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let candidates = ["x86_64-unknown-linux-gnu/debug", "aarch64-unknown-linux-gnu/debug", "debug"]
        for candidate in candidates {
            let path = root.appendingPathComponent(".build/\(candidate)").path
            if FileManager.default.fileExists(atPath: path + "/steprund") { return path }
        }
        return root.appendingPathComponent(".build/debug").path
    }()

    static var steprund: String { directory + "/steprund" }
    static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }
}

/// A child process with its output in a file, stopped (SIGTERM) by the test.
final class DaemonProcess: @unchecked Sendable {
    // Only `pid` and `log` are read after init, and both are immutable: safe to share.
    let pid: pid_t
    let log: String
    /// Set once the child has been reaped, so `deinit` never signals a recycled pid.
    private let reaped = Atomic<Bool>(false)

    deinit {
        // A test that failed half-way must not leave its daemon running.
        if !reaped.load(ordering: .relaxed) {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        log = FileManager.default.temporaryDirectory.appendingPathComponent("steprund-\(UUID().uuidString.prefix(8)).log").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        var merged = ProcessInfo.processInfo.environment
        for key in merged.keys where key.hasPrefix("STEPRUN_") || key == "NOTIFY_SOCKET" || key.hasPrefix("LISTEN_") || key.hasPrefix("WATCHDOG_") {
            merged[key] = nil
        }
        merged.merge(environment) { _, new in new }
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = merged.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var child: pid_t = 0
        let status = posix_spawn(&child, arguments[0], &actions, nil, argv, envp)
        guard status == 0 else { throw StepRunError.internal("cannot start \(arguments[0]): \(String(cString: strerror(status)))") }
        pid = child
    }

    var output: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    /// True once the process has ended (it stays a zombie until `wait`, so its pid is not reused).
    var hasExited: Bool {
        var info = siginfo_t()
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info._sifields._sigchld.si_pid == pid
    }

    /// Sends SIGTERM and waits for the exit status (on a thread of its own: waitpid blocks).
    @discardableResult
    func terminate(signal: Int32 = SIGTERM) async -> Int32 {
        kill(pid, signal)
        return await wait()
    }

    func wait() async -> Int32 {
        let pid = self.pid
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread {
                var status: Int32 = 0
                waitpid(pid, &status, 0)
                continuation.resume(returning: (status >> 8) & 0xFF)
            }.start()
        }
        reaped.store(true, ordering: .relaxed)
        return status
    }
}

/// A free TCP port on 127.0.0.1.
func freePort() -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(descriptor, pointer, length)
            return getsockname(descriptor, pointer, &length)
        }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Runs a shell command on its own thread; returns its exit status and output.
func shell(_ command: String) async -> (status: Int32, output: String) {
    let file = FileManager.default.temporaryDirectory.appendingPathComponent("sh-\(UUID().uuidString)").path
    let status: Int32 = await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: system("\(command) > '\(file)' 2>&1")) }.start()
    }
    defer { try? FileManager.default.removeItem(atPath: file) }
    return ((status >> 8) & 0xFF, (try? String(contentsOfFile: file, encoding: .utf8)) ?? "")
}

func testDatabaseURL() throws -> String {
    try TestDatabase.url
}

func temporaryPath(_ name: String) -> String {
    TestDatabase.temporaryPath(name)
}
