import Foundation
@testable import steprund
import StepRunCore
import Testing

@Suite("Configuration precedence")
struct SettingsTests {
    private func configFile(_ text: String) throws -> String {
        let path = temporaryPath("steprund") + ".conf"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("a flag beats the environment, which beats the config file, which beats the default")
    func precedence() throws {
        let file = try configFile("""
            # comment
            pool-size = 3
            schema = from_file
            request_timeout = 5m
            log-level = debug
            """)
        let settings = try Settings(
            flags: ["config": file, "pool-size": "11"],
            environment: ["STEPRUN_POOL_SIZE": "7", "STEPRUN_SCHEMA": "from_env"])
        #expect(settings.poolSize == 11)
        #expect(settings.schema == "from_env")
        #expect(settings.requestTimeout == .seconds(300))
        #expect(settings.logLevel == .debug)
        #expect(settings.maxInFlight == 128)
    }

    @Test("a deprecated spelling still works as a flag, an environment variable and a config key, and says so")
    func deprecatedSpellingsStillWork() throws {
        let file = try configFile("group-hold = 3\n")
        let fromFile = try Settings(flags: ["config": file], environment: [:])
        #expect(fromFile.groupCommitHold == 3)
        #expect(fromFile.deprecations == ["config key group-hold is deprecated and will be removed; use group-commit-hold"])
        let fromEnvironment = try Settings(flags: [:], environment: ["STEPRUN_GROUP_HOLD": "4"])
        #expect(fromEnvironment.groupCommitHold == 4)
        #expect(fromEnvironment.deprecations == ["STEPRUN_GROUP_HOLD is deprecated and will be removed; use STEPRUN_GROUP_COMMIT_HOLD"])
        let fromFlag = try Settings(flags: ["group-hold": "0"], environment: [:])
        #expect(fromFlag.groupCommitHold == 0)
        #expect(fromFlag.deprecations == ["--group-hold is deprecated and will be removed; use --group-commit-hold"])
        // The current spelling wins at the same level and beats the old one at a lower level; the
        // precedence between levels is unchanged.
        let both = try Settings(flags: ["group-hold": "2", "group-commit-hold": "5"], environment: [:])
        #expect(both.groupCommitHold == 5 && both.deprecations.isEmpty)
        let flagOverOldEnvironment = try Settings(flags: ["group-hold": "2"], environment: ["STEPRUN_GROUP_COMMIT_HOLD": "6"])
        #expect(flagOverOldEnvironment.groupCommitHold == 2)
        #expect(try Settings(flags: [:], environment: [:]).deprecations.isEmpty)
    }

    @Test("a frame limit beyond what Postgres can take is a start-up error")
    func frameLimitIsBounded() throws {
        func validated(_ limit: String) throws {
            try Settings(flags: ["max-frame-bytes": limit, "no-tcp": "true"], environment: [:]).serverConfiguration().validate()
        }
        try validated("1073741824")
        #expect(throws: StepRunError.self) { try validated("3000000000") }
    }

    @Test("a frame limit too small for the largest row the payload limit allows is a start-up error naming both")
    func frameMustCarryTheLargestRow() throws {
        func validated(_ flags: [String: String]) throws {
            try Settings(flags: flags.merging(["no-tcp": "true"]) { a, _ in a }, environment: [:]).serverConfiguration().validate()
        }
        // The defaults satisfy it: 8 MiB frames carry six 1 MiB fields and the rest.
        try validated([:])
        let error = #expect(throws: StepRunError.self) { try validated(["max-frame-bytes": "4194304"]) }
        guard case .invalidArgument(let field, let message)? = error else {
            Issue.record("expected invalidArgument, got \(String(describing: error))")
            return
        }
        #expect(field == "max_frame_bytes")
        #expect(message.contains("max payload bytes") && message.contains("\(StoreLimits(maxPayloadBytes: 1 << 20).maxStepRunBytes)"))
        // Lowering the payload limit to what the message offers makes the same frame limit work.
        try validated(["max-frame-bytes": "4194304", "max-payload-bytes": "\(StoreLimits.maxPayloadBytes(fittingFrame: 4 << 20))"])
        #expect(throws: StepRunError.self) {
            try validated(["max-frame-bytes": "4194304", "max-payload-bytes": "\(StoreLimits.maxPayloadBytes(fittingFrame: 4 << 20) + 1)"])
        }
    }

    @Test("a payload limit above what Postgres can build as jsonb is a start-up error")
    func payloadLimitIsBounded() throws {
        func validated(_ payload: Int) throws {
            try Settings(
                flags: ["max-frame-bytes": "1073741824", "max-payload-bytes": "\(payload)", "no-tcp": "true"], environment: [:]
            ).serverConfiguration().validate()
        }
        try validated(32 << 20)
        #expect(throws: StepRunError.self) { try validated((32 << 20) + 1) }
    }

    @Test("an unknown key in the config file is a start-up error naming the line")
    func unknownKey() throws {
        let file = try configFile("pool-size = 3\npool-sise = 4\n")
        #expect(throws: DaemonError.self) { try Settings(flags: ["config": file], environment: [:]) }
    }

    @Test("durations and addresses parse in their documented forms")
    func parsing() throws {
        #expect(Settings.parseDuration("250ms") == .milliseconds(250))
        #expect(Settings.parseDuration("200us") == .microseconds(200))
        #expect(Settings.parseDuration("50µs") == .microseconds(50))
        #expect(Settings.parseDuration("0") == .zero)
        #expect(Settings.parseDuration("2") == .seconds(2))
        #expect(Settings.parseDuration("soon") == nil)
        #expect(try Settings.parseAddress(":7433") == ("0.0.0.0", 7433))
        #expect(try Settings.parseAddress("[::1]:9") == ("::1", 9))
        #expect(throws: DaemonError.self) { try Settings.parseAddress("nowhere") }
    }

    @Test("a world-readable token file is refused")
    func worldReadableToken() throws {
        let path = temporaryPath("token")
        try "secret".write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o644)
        #expect(throws: DaemonError.self) { try Settings.readToken(path) }
        chmod(path, 0o600)
        #expect(try Settings.readToken(path) == "secret")
    }

    @Test("TCP without a token and without --insecure-no-auth does not start")
    func tcpNeedsToken() async throws {
        let result = await shell("'\(Binaries.steprund)' serve --database-url 'host=/nonexistent' --no-unix-socket --tcp 127.0.0.1:0")
        #expect(result.status != 0)
        #expect(result.output.contains("token"), "\(result.output)")
    }

    @Test("steprund given a deprecated flag runs and logs which spelling replaces it")
    func deprecatedFlagIsLogged() async throws {
        let schema = "deprecated_\(UInt32.random(in: 0...UInt32.max))"
        let result = await shell(
            "'\(Binaries.steprund)' migrate --database-url '\(try testDatabaseURL())' --schema \(schema) --group-hold 2 2>&1")
        #expect(result.status == 0, "\(result.output)")
        #expect(result.output.contains("--group-hold is deprecated and will be removed; use --group-commit-hold"), "\(result.output)")
    }

    @Test("steprund with a frame limit too small for the largest row does not start, and says what would")
    func smallFrameDoesNotStart() async throws {
        let socket = temporaryPath("steprund") + ".sock"
        let result = await shell("'\(Binaries.steprund)' serve --database-url 'host=/nonexistent' --unix-socket '\(socket)' --max-frame-bytes 4194304")
        #expect(result.status != 0)
        #expect(result.output.contains("max frame bytes 4194304") && result.output.contains("697173"), "\(result.output)")
        #expect(!FileManager.default.fileExists(atPath: socket))
    }

    @Test("steprund on the embedded database with an invalid frame limit refuses before starting Postgres, and leaves none running")
    func invalidLimitsLeaveNoEmbeddedPostgres() async throws {
        let directory = temporaryPath("steprund-embedded")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Postgres (the postgres user, when the suite runs as root) must reach the cluster under it.
        chmod(directory, 0o755)
        let dataDirectory = directory + "/postgres/data"
        defer {
            // Before the fix the cluster stayed up: stop it so the test leaves nothing behind either way.
            let bin = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?.compactMap(Int.init).max()
            if let bin, FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") {
                let prefix = getuid() == 0 ? "runuser -u postgres -- " : ""
                _ = system("\(prefix)/usr/lib/postgresql/\(bin)/bin/pg_ctl -D '\(dataDirectory)' -m immediate -w stop > /dev/null 2>&1")
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
        let socket = directory + "/steprund.sock"
        // No --database-url and no STEPRUN_DATABASE_URL (DaemonProcess-style environment): the embedded default.
        let result = await shell(
            "env -u STEPRUN_DATABASE_URL '\(Binaries.steprund)' serve --data-dir '\(directory)' --unix-socket '\(socket)' --max-frame-bytes 4194304")
        #expect(result.status != 0)
        #expect(result.output.contains("max frame bytes 4194304"), "\(result.output)")
        let postgres = await shell("pgrep -f '[p]ostgres -D \(dataDirectory)'")
        #expect(postgres.status != 0, "an embedded Postgres is still running: \(postgres.output)")
        #expect(!FileManager.default.fileExists(atPath: dataDirectory + "/postmaster.pid"))
    }
}
