import Foundation
import Logging
import StepRunClient
import StepRunCore
import StepRunPostgres
import StepRunServer
import StepRunWire
import Testing

/// One in-process daemon over the real repository, and a way to run the built `steprunctl`.
enum CtlHarness {
    struct Daemon: Sendable {
        let socket: String
        let port: Int
        let tokenFile: String
    }

    static let daemon = Task<Daemon, any Error> {
        guard let url = ProcessInfo.processInfo.environment["STEPRUN_TEST_DATABASE_URL"], !url.isEmpty else {
            throw StepRunError.failedPrecondition("STEPRUN_TEST_DATABASE_URL is not set: run `make test`")
        }
        var logger = Logger(label: "steprunctl.tests")
        logger.logLevel = .critical
        let pool = PostgresPool(configuration: PostgresConfiguration(connectionString: url, poolSize: 4), logger: logger)
        try await SchemaMigrator.migrate(pool: pool, logger: logger)
        let repository = StepRunRepository(pool: pool)
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("ctl-\(UUID().uuidString.prefix(8)).sock").path
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("ctl-token-\(UUID().uuidString.prefix(8))").path
        try "ctl-secret\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        let server = StepRunServer(
            configuration: ServerConfiguration(unixSocketPath: socket, tcp: ("127.0.0.1", 0), tcpToken: "ctl-secret"),
            store: repository,
            health: { _ in HealthReply(serving: true, databaseLatencyMicros: 1, message: "ok") },
            logger: logger)
        Task { try await server.run() }
        let bound = try await server.listening()
        return Daemon(socket: socket, port: bound.tcpPort ?? 0, tokenFile: tokenFile)
    }

    static let binary: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for candidate in ["x86_64-unknown-linux-gnu/debug", "aarch64-unknown-linux-gnu/debug", "debug"] {
            let path = root.appendingPathComponent(".build/\(candidate)/steprunctl").path
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return root.appendingPathComponent(".build/debug/steprunctl").path
    }()

    /// Runs steprunctl on a thread of its own; returns exit status, stdout and stderr.
    static func run(_ arguments: [String], unix: Bool = true, connect: Bool = true) async throws -> (status: Int32, out: String, err: String) {
        let daemon = try await daemon.value
        let connection = !connect ? [] : unix ? ["--unix-socket", daemon.socket] : ["--tcp", "127.0.0.1:\(daemon.port)", "--token-file", daemon.tokenFile]
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("ctl-out-\(UUID().uuidString)").path
        let err = out + ".err"
        let quoted = ([binary] + arguments + connection).map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let command = quoted.joined(separator: " ") + " > '\(out)' 2> '\(err)'"
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: system(command)) }.start()
        }
        defer {
            try? FileManager.default.removeItem(atPath: out)
            try? FileManager.default.removeItem(atPath: err)
        }
        return ((status >> 8) & 0xFF, (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
    }

    static func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }
}

@Suite("steprunctl")
struct SteprunctlTests {
    @Test("health prints a line for people and an object for scripts, over Unix and TCP")
    func health() async throws {
        let table = try await CtlHarness.run(["health"])
        #expect(table.status == 0, "\(table.err)")
        #expect(table.out.hasPrefix("serving"))
        let json = try await CtlHarness.run(["health", "--json"], unix: false)
        #expect(json.status == 0, "\(json.err)")
        let object = try #require(try CtlHarness.json(json.out) as? [String: Any])
        #expect(object["serving"] as? Bool == true)
    }

    @Test("begin, complete, then reads: statuses, completed, outputs, compensation, get, attempts, purge")
    func scriptedRun() async throws {
        let run = UUID().uuidString.lowercased()
        let begin = try await CtlHarness.run(["begin", run, "charge", "--input", #"{"amount": 5}"#, "--json"])
        #expect(begin.status == 0, "\(begin.err)")
        let begun = try #require(try CtlHarness.json(begin.out) as? [String: Any])
        #expect(begun["decision"] as? String == "execute")
        let stepRun = try #require(begun["step_run"] as? [String: Any])
        let id = try #require(stepRun["id"] as? String)
        #expect((stepRun["input"] as? [String: Any])?["amount"] as? Int == 5)

        #expect(try await CtlHarness.run(["begin", run, "charge"]).out.hasPrefix("skip"))
        #expect(try await CtlHarness.run(["complete", id, "--output", #"{"receipt": "r1"}"#]).status == 0)
        #expect(try await CtlHarness.run(["schedule", run, "ship"]).out.hasPrefix("schedule"))

        let statuses = try await CtlHarness.run(["statuses", run, "--json"])
        #expect(try CtlHarness.json(statuses.out) as? [String: String] == ["charge": "completed", "ship": "pending"])
        let statusTable = try await CtlHarness.run(["statuses", run])
        #expect(statusTable.out.contains("charge  completed"))
        #expect(try CtlHarness.json(try await CtlHarness.run(["completed", run, "--json"]).out) as? [String] == ["charge"])
        let outputs = try CtlHarness.json(try await CtlHarness.run(["outputs", run, "--json"]).out) as? [[String: String]]
        #expect(outputs == [["receipt": "r1"]])
        let compensation = try CtlHarness.json(try await CtlHarness.run(["compensation", run, "--json"]).out) as? [[String: Any]]
        #expect(compensation?.first?["step"] as? String == "charge")
        let get = try CtlHarness.json(try await CtlHarness.run(["get", run, "charge", "--json"]).out) as? [String: Any]
        #expect(get?["status"] as? String == "completed")
        #expect((get?["completed_at"] as? String)?.hasSuffix("Z") == true)
        #expect(try CtlHarness.json(try await CtlHarness.run(["attempts", id, "--json"]).out) as? [Any] != nil)
        let purge = try CtlHarness.json(try await CtlHarness.run(["purge-run", run, "--json"]).out) as? [String: Int]
        #expect(purge == ["step_runs": 2, "attempts": 0])
    }

    @Test("exit codes tell not found, stale, invalid argument, unavailable and usage apart")
    func exitCodes() async throws {
        let run = UUID().uuidString.lowercased()
        #expect(try await CtlHarness.run(["get", run, "nothing"]).status == 3)
        #expect(try await CtlHarness.run(["complete", UUID().uuidString]).status == 3)
        let begin = try CtlHarness.json(try await CtlHarness.run(["begin", run, "s", "--json"]).out) as? [String: Any]
        let id = try #require((begin?["step_run"] as? [String: Any])?["id"] as? String)
        #expect(try await CtlHarness.run(["fail", id, "--error", #"{"e": 1}"#]).status == 0)
        let stale = try await CtlHarness.run(["complete", id])
        #expect(stale.status == 4)
        #expect(stale.err.contains("stale_step_run"))
        let invalid = try await CtlHarness.run(["begin", run, "x", "--input", "[1]"])
        #expect(invalid.status == 6)
        #expect(invalid.err.contains("input"))
        #expect(try await CtlHarness.run(["get", "not-a-uuid", "s"]).status == 64)
        #expect(try await CtlHarness.run(["frobnicate"]).status == 64)
        let unavailable = try await CtlHarness.run(["health", "--unix-socket", "/nonexistent/steprund.sock", "--timeout", "2s"], connect: false)
        #expect(unavailable.status == 5, "\(unavailable.err)")
    }
}
