import Foundation
import StepRunCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What one run of the steprunctl binary produced.
struct CtlResult: Sendable, CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    /// The standard-error lines (without the final newline).
    var stderrLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast() }

    var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// Runs the built steprunctl binary as a subprocess, the way an operator or a script would.
enum Steprunctl {
    /// The binary SwiftPM built next to this test bundle (`swift build` before `swift test`), or
    /// `STEPRUNCTL_BINARY` if set.
    static let binary: String? = {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["STEPRUNCTL_BINARY"], !path.isEmpty { return path }
        var directories: [URL] = []
        if let bundle = Bundle.main.executableURL { directories.append(bundle.deletingLastPathComponent()) }
        directories.append(URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent())
        // Tests/StepRunCtlTests/Steprunctl.swift -> the package root.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        directories.append(root.appendingPathComponent(".build/debug"))
        return directories.map { $0.appendingPathComponent("steprunctl").path }
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Environment variables steprunctl reads; removed from the inherited environment so that
    /// only what a test passes counts.
    static let connectionVariables = [
        "STEPRUN_UNIX_SOCKET", "STEPRUN_TCP", "STEPRUN_TOKEN_FILE", "STEPRUNCTL_TLS", "STEPRUNCTL_TLS_CA", "STEPRUNCTL_TLS_CERT",
        "STEPRUNCTL_TLS_KEY", "STEPRUNCTL_TLS_SERVER_NAME",
    ]

    /// Runs `steprunctl arguments…` and waits for it (at most a minute, then it is killed).
    ///
    /// The process is spawned and reaped on a thread of its own, never on the cooperative pool:
    /// blocking a pool thread for the child's lifetime stalls every other test on a 2-core machine.
    static func run(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) async throws -> CtlResult {
        guard let binary else {
            throw StepRunError.failedPrecondition(
                "steprunctl is not built: run `swift build` before `swift test`, or set STEPRUNCTL_BINARY")
        }
        var childEnvironment = ProcessInfo.processInfo.environment
        for name in connectionVariables { childEnvironment[name] = nil }
        childEnvironment.merge(environment) { _, new in new }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steprunctl-run-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let stdoutPath = directory.appendingPathComponent("stdout").path
        let stderrPath = directory.appendingPathComponent("stderr").path
        let stdinPath = stdin == nil ? "/dev/null" : directory.appendingPathComponent("stdin").path
        if let stdin {
            try Data(stdin.utf8).write(to: URL(fileURLWithPath: stdinPath))
        }
        let command = [binary] + arguments
        let environmentLines = childEnvironment.map { "\($0.key)=\($0.value)" }
        let status: Result<Int32, StepRunError> = await withCheckedContinuation { continuation in
            Thread {
                continuation.resume(
                    returning: spawnAndWait(
                        command, environment: environmentLines, stdin: stdinPath, stdout: stdoutPath, stderr: stderrPath))
            }.start()
        }
        return CtlResult(
            status: try status.get(),
            stdout: (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")
    }

    /// posix_spawn with the three standard streams redirected to files, then waitpid.
    ///
    /// Returns the exit status, or 128 + the signal number if the child was killed.
    private static func spawnAndWait(
        _ command: [String], environment: [String], stdin: String, stdout: String, stderr: String
    ) -> Result<Int32, StepRunError> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        let argv = command.map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, envp)
        guard spawned == 0 else {
            return .failure(.internal("posix_spawn \(command[0]) failed: \(String(cString: strerror(spawned)))"))
        }

        let giveUp = ContinuousClock.now.advanced(by: .seconds(60))
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0 && errno != EINTR {
                return .failure(.internal("waitpid failed: \(String(cString: strerror(errno)))"))
            }
            if ContinuousClock.now > giveUp {
                kill(pid, SIGKILL)
                _ = waitpid(pid, &status, 0)
                return .failure(.deadlineExceeded("steprunctl \(command.dropFirst().joined(separator: " ")) ran over a minute; killed it"))
            }
            usleep(5_000)
        }
        // The wait status layout: low 7 bits the terminating signal (0 if it exited), then the exit code.
        let signal = status & 0x7f
        return .success(signal == 0 ? (status >> 8) & 0xff : 128 + signal)
    }
}

/// Parses a `--json` document.
func parseJSON(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
}

/// Parses a `--json` document that must be an object.
func parseJSONObject(_ text: String) throws -> [String: Any] {
    guard let object = try parseJSON(text) as? [String: Any] else {
        throw StepRunError.internal("expected a JSON object, got: \(text)")
    }
    return object
}

/// Parses a `--json` document that must be an array.
func parseJSONArray(_ text: String) throws -> [Any] {
    guard let array = try parseJSON(text) as? [Any] else {
        throw StepRunError.internal("expected a JSON array, got: \(text)")
    }
    return array
}
