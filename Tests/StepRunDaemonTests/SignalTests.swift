#if canImport(Glibc)
import Glibc
#endif
import Foundation
import StepRunClient
import Testing
import StepRunTesting

/// How steprund stops: every stop signal is a graceful shutdown, and one that arrives during
/// start-up ends start-up cleanly instead of killing the process (which left the embedded Postgres
/// of `make run` behind).
@Suite("Stop signals")
struct SignalTests {
    @Test("SIGHUP shuts steprund down gracefully, like SIGTERM")
    func hangUpIsAGracefulShutdown() async throws {
        let socketPath = temporaryPath("hup") + ".sock"
        let daemon = try DaemonProcess([
            Binaries.steprund, "serve", "--database-url", try testDatabaseURL(), "--unix-socket", socketPath, "--log-level", "info",
        ])
        #expect(await eventually { unixSocketAccepts(socketPath) }, "daemon output: \(daemon.output)")
        let status = await daemon.terminate(signal: SIGHUP)
        #expect(status == 0)
        #expect(daemon.output.contains("received SIGHUP; shutting down gracefully"), "\(daemon.output)")
        #expect(daemon.output.contains("all connections closed"), "\(daemon.output)")
    }

    @Test("SIGTERM while start-up waits for the database ends start-up at once, with status 0")
    func stopDuringStartUp() async throws {
        let socketPath = temporaryPath("early-term") + ".sock"
        // Nothing listens there: migrations keep retrying, the daemon is still starting up.
        let daemon = try DaemonProcess([
            Binaries.steprund, "serve", "--database-url", "postgresql://postgres@127.0.0.1:\(freePort())/postgres",
            "--unix-socket", socketPath, "--log-level", "info",
        ])
        #expect(await eventually { daemon.output.contains("database not reachable yet; retrying") }, "\(daemon.output)")
        let started = ContinuousClock.now
        let status = await daemon.terminate(signal: SIGTERM)
        #expect(status == 0)
        #expect(daemon.output.contains("stopped by SIGTERM during start-up"), "\(daemon.output)")
        // At the next retry (at most 5 s apart), not after the 60 s start-up allows for the database.
        #expect(ContinuousClock.now - started < .seconds(30))
        #expect(!FileManager.default.fileExists(atPath: socketPath))
    }
}
