import Foundation
import StepRunClient
import StepRunCore
import Testing
import StepRunTesting

@Suite("Running under systemd")
struct SystemdTests {
    @Test("READY=1 comes only once the listeners accept connections; watchdog pings; STOPPING=1 on SIGTERM")
    func notifyProtocol() async throws {
        let notify = NotifyListener()
        let socketPath = temporaryPath("notify-daemon") + ".sock"
        let daemon = try DaemonProcess(
            [Binaries.steprund, "serve", "--database-url", try testDatabaseURL(), "--unix-socket", socketPath, "--log-level", "warning"],
            environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"])
        let untilReady = await notify.wait(for: "READY=1")
        #expect(untilReady.last?.contains("READY=1") == true, "daemon output: \(daemon.output)")
        #expect(unixSocketAccepts(socketPath), "READY=1 arrived before the Unix socket accepted connections")
        #expect(untilReady.last?.contains("STATUS=serving on unix:\(socketPath)") == true)
        let pings = await notify.wait(for: "WATCHDOG=1", timeout: .seconds(5))
        #expect(pings.last == "WATCHDOG=1")
        kill(daemon.pid, SIGTERM)
        let stopping = await notify.wait(for: "STOPPING=1", timeout: .seconds(10))
        #expect(stopping.last?.contains("STOPPING=1") == true)
        #expect(await daemon.wait() == 0)
    }

    @Test("socket activation: steprund serves on the Unix socket and TCP port systemd passes in")
    func socketActivation() async throws {
        let tokenFile = temporaryPath("token")
        try "activation-token\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        chmod(tokenFile, 0o600)
        // systemd-socket-activate binds both addresses itself and exits if the port was taken
        // meanwhile (the free port is only free when picked): then try again with another.
        var attempt = 0
        var socketPath = ""
        var port = 0
        var daemon: DaemonProcess
        repeat {
            attempt += 1
            socketPath = temporaryPath("activated") + ".sock"
            port = freePort()
            daemon = try DaemonProcess([
                "/usr/bin/systemd-socket-activate", "-l", socketPath, "-l", "127.0.0.1:\(port)",
                "-E", "STEPRUN_DATABASE_URL=\(try testDatabaseURL())", "-E", "STEPRUN_TOKEN_FILE=\(tokenFile)",
                Binaries.steprund, "serve", "--log-level", "info",
            ])
            // systemd-socket-activate starts the daemon on the first connection, as systemd would.
            let path = socketPath
            let listening = daemon
            if await eventually(timeout: .seconds(30), { unixSocketAccepts(path) || listening.hasExited }), !daemon.hasExited { break }
        } while attempt < 3
        #expect(unixSocketAccepts(socketPath), "after \(attempt) attempts; output: \(daemon.output)")
        let unix = StepRunClient(target: .unix(path: socketPath), configuration: .init(connectTimeout: .seconds(30)))
        #expect(try await unix.health(timeout: .seconds(30)).serving, "daemon output: \(daemon.output)")
        let tcp = StepRunClient(target: .tcp(host: "127.0.0.1", port: port, token: "activation-token"))
        #expect(try await tcp.health().serving)
        let wrong = StepRunClient(target: .tcp(host: "127.0.0.1", port: port, token: "wrong"))
        #expect(await (try? wrong.health()) == nil)
        #expect(daemon.output.contains("using sockets from the service manager"))
        await unix.close()
        await tcp.close()
        await wrong.close()
        await daemon.terminate()
    }

    @Test("the units verify cleanly and the service's exposure is 1.5 or lower")
    func unitFiles() async throws {
        let directory = temporaryPath("units")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let service = try String(contentsOfFile: Binaries.repositoryRoot + "/systemd/steprund.service", encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/steprund", with: Binaries.steprund)
        try service.write(toFile: directory + "/steprund.service", atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(atPath: Binaries.repositoryRoot + "/systemd/steprund.socket", toPath: directory + "/steprund.socket")

        let verify = await shell("cd '\(directory)' && systemd-analyze verify --man=no ./steprund.service ./steprund.socket")
        #expect(verify.status == 0, "\(verify.output)")
        #expect(verify.output.isEmpty, "\(verify.output)")

        let security = await shell("systemd-analyze security --offline=true '\(directory)/steprund.service'")
        let line = security.output.split(separator: "\n").last { $0.contains("Overall exposure level") }
        let score = line.flatMap { $0.split(separator: " ").compactMap { Double($0) }.first }
        #expect(score != nil, "\(security.output)")
        #expect((score ?? 10) <= 1.5, "\(line ?? "")")
    }
}
