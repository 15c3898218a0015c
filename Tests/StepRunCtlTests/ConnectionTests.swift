import Foundation
import StepRunCore
import Testing

@Suite("Reaching the daemon")
struct ConnectionTests {
    @Test func tcpWithATokenFileReachesTheDaemon() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        try await daemon.completedStep(runID: runID, step: "charge", output: ["receipt": "r-1"])

        let result = try await Steprunctl.run(["get", runID.uuidString, "charge", "--json"] + daemon.tcpFlags)

        #expect(result.status == 0, "\(result)")
        #expect(try parseJSONObject(result.stdout)["status"] as? String == "completed")
    }

    @Test func tcpAddressAndTokenFileComeFromTheEnvironment() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        try await daemon.completedStep(runID: runID, step: "charge", output: [:])

        let result = try await Steprunctl.run(
            ["statuses", runID.uuidString, "--json"],
            environment: ["STEPRUN_TCP": "127.0.0.1:\(daemon.tcpPort)", "STEPRUN_TOKEN_FILE": daemon.tokenFile])

        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == #"{"charge":"completed"}"# + "\n")
    }

    @Test func theUnixSocketInTheEnvironmentWinsOverTCPInTheEnvironment() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        try await daemon.completedStep(runID: runID, step: "charge", output: [:])

        let result = try await Steprunctl.run(
            ["completed", runID.uuidString, "--json"],
            environment: ["STEPRUN_UNIX_SOCKET": daemon.unixPath, "STEPRUN_TCP": "127.0.0.1:1"])

        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == #"["charge"]"# + "\n")
    }

    @Test func theTCPFlagWinsOverTheUnixSocketInTheEnvironment() async throws {
        let daemon = try await CtlDaemon.shared()

        let result = try await Steprunctl.run(
            ["health", "--json"] + daemon.tcpFlags,
            environment: ["STEPRUN_UNIX_SOCKET": "/nonexistent/steprund.sock"])

        #expect(result.status == 0, "\(result)")
        #expect(try parseJSONObject(result.stdout)["target"] as? String == "tcp:127.0.0.1:\(daemon.tcpPort)")
    }

    @Test func aWrongTokenIsRefusedByTheDaemon() async throws {
        let daemon = try await CtlDaemon.shared()
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("steprunctl-wrong-\(UUID().uuidString)")
        try Data("not-the-token".utf8).write(to: tokenFile)
        defer { try? FileManager.default.removeItem(at: tokenFile) }

        let result = try await Steprunctl.run(
            ["statuses", UUID.v7().uuidString, "--tcp", "127.0.0.1:\(daemon.tcpPort)", "--token-file", tokenFile.path])

        #expect(result.status == 1, "\(result)")
        #expect(result.stderrLines.count == 1 && result.stderrLines[0].hasPrefix("steprunctl: UNAUTHENTICATED: "))
    }

    @Test func aMissingTokenFileExitsInvalidArgument() async throws {
        let daemon = try await CtlDaemon.shared()

        let result = try await Steprunctl.run(
            ["health", "--tcp", "127.0.0.1:\(daemon.tcpPort)", "--token-file", "/nonexistent/steprund-token"])

        #expect(result.status == 6, "\(result)")
        #expect(result.stderrLines.count == 1 && result.stderrLines[0].hasPrefix("steprunctl: cannot read token file /nonexistent/steprund-token"))
    }

    @Test(arguments: [["health"], ["get", UUID.v7().uuidString, "charge", "--json"], ["purge-run", UUID.v7().uuidString]])
    func nothingListeningOnTheSocketExitsUnavailable(command: [String]) async throws {
        let socket = FileManager.default.temporaryDirectory.appendingPathComponent("steprunctl-nobody-\(UUID().uuidString).sock").path

        let result = try await Steprunctl.run(command + ["--unix-socket", socket])

        #expect(result.status == 5, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines.count == 1)
        #expect(result.stderrLines.first?.hasPrefix("steprunctl: UNAVAILABLE: cannot connect to steprund at unix:\(socket)") == true)
    }

    @Test func aDaemonThatNeverAnswersExitsUnavailableAfterTheTimeout() async throws {
        let socket = try SilentSocket()
        defer { socket.close() }

        let started = ContinuousClock.now
        let result = try await Steprunctl.run(["statuses", UUID.v7().uuidString, "--timeout", "300ms", "--unix-socket", socket.path])

        #expect(result.status == 5, "\(result)")
        #expect(result.stderrLines.count == 1 && result.stderrLines[0].hasPrefix("steprunctl: DEADLINE_EXCEEDED: "), "\(result)")
        #expect(ContinuousClock.now - started < .seconds(10))
    }

    @Test func theDefaultSocketIsSteprundsDefault() async throws {
        // Nothing listens at /run/steprund/steprund.sock on a test machine; the error names the path tried.
        let result = try await Steprunctl.run(["health"])

        try #require(!FileManager.default.fileExists(atPath: "/run/steprund/steprund.sock"))
        #expect(result.status == 5, "\(result)")
        #expect(result.stderr.contains("unix:/run/steprund/steprund.sock"))
    }
}

@Suite("Health")
struct HealthTests {
    @Test func healthTableReportsAServingDaemon() async throws {
        let daemon = try await CtlDaemon.shared()

        let result = try await Steprunctl.run(["health"] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.map { $0.split(separator: " ").first.map(String.init) ?? "" } == [
            "status", "message", "database_latency", "target", "server", "protocol_version", "max_frame_bytes",
            "max_payload_bytes", "max_in_flight",
        ])
        #expect(lines[0] == "status             serving")
        #expect(lines[1] == "message            ok")
        #expect(lines[2].hasSuffix(" ms"))
        #expect(lines[3] == "target             unix:\(daemon.unixPath)")
        #expect(lines[4].hasPrefix("server             steprund "))
        #expect(lines[7] == "max_payload_bytes  1048576")
    }

    @Test func healthJSONReportsTheServerAndItsLimits() async throws {
        let daemon = try await CtlDaemon.shared()

        let result = try await Steprunctl.run(["health", "--json"] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        let object = try parseJSONObject(result.stdout)
        #expect(Set(object.keys) == [
            "serving", "message", "database_latency_us", "target", "server", "protocol_version", "max_frame_bytes",
            "max_payload_bytes", "max_in_flight",
        ])
        #expect(object["serving"] as? Bool == true)
        #expect((object["database_latency_us"] as? Int).map { $0 >= 0 } == true)
        #expect((object["server"] as? String)?.hasPrefix("steprund ") == true)
        #expect(object["protocol_version"] as? Int == 2)
        #expect(object["max_frame_bytes"] as? Int == 8_388_608)
        #expect(object["max_in_flight"] as? Int == 128)
    }

    @Test func healthExitsUnavailableWhenTheDaemonCannotReachItsDatabase() async throws {
        let daemon = try await CtlDaemon.withUnreachableDatabase()

        let json = try await Steprunctl.run(["health", "--json"] + daemon.unixFlags)
        let table = try await Steprunctl.run(["health"] + daemon.unixFlags)

        #expect(json.status == 5, "\(json)")
        let object = try parseJSONObject(json.stdout)
        #expect(object["serving"] as? Bool == false)
        #expect(object["database_latency_us"] is NSNull)
        #expect(json.stderrLines == ["steprunctl: steprund is not serving: UNAVAILABLE: database is down (simulated)"])
        #expect(table.status == 5, "\(table)")
        #expect(table.stdout.hasPrefix("status             not serving\n"))
        #expect(table.stdout.contains("\ndatabase_latency   -\n"))
    }
}
