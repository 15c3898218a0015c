#if canImport(Glibc)
import Glibc
#endif
import Foundation
import StepRunClient
import StepRunCore
import Testing
import StepRunTesting

/// A primary and a synchronous streaming standby of its own (`scripts/pgtmp`, `pg_basebackup -R`).
private struct ReplicatedPair {
    let primary = temporaryPath("failover-primary")
    let standby = temporaryPath("failover-standby")
    let primaryPort = freePort()
    let standbyPort = freePort()
    let pgtmp = Binaries.repositoryRoot + "/scripts/pgtmp"

    /// Standby first, no target_session_attrs: the URL of the issue's report.
    var standbyFirstURL: String { "postgresql://postgres@127.0.0.1:\(standbyPort),127.0.0.1:\(primaryPort)/postgres" }

    func psql(port: Int, _ sql: String) async -> String {
        await shell("psql -h 127.0.0.1 -p \(port) -U postgres -d postgres -XAtq -c \"\(sql)\"").output
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Every commit on the primary waits for the standby to have flushed it (zero loss of
    /// acknowledged writes on failover). The standby's copy of the setting is cleared: once
    /// promoted, with no standby of its own, it would otherwise wait for one on every commit.
    func start() async -> Bool {
        let primaryConf = "\(primary)/data/postgresql.conf"
        let standbyConf = "\(standby)/data/postgresql.conf"
        let setup = """
            '\(pgtmp)' init '\(primary)' \
            && echo "synchronous_standby_names = '*'" >> '\(primaryConf)' \
            && echo "synchronous_commit = on" >> '\(primaryConf)' \
            && '\(pgtmp)' start '\(primary)' \(primaryPort) \
            && '\(pgtmp)' standby '\(standby)' \(primaryPort) \
            && echo "synchronous_standby_names = ''" >> '\(standbyConf)' \
            && '\(pgtmp)' start '\(standby)' \(standbyPort)
            """
        let result = await shell(setup)
        if result.status != 0 { print("failover setup failed: \(result.output)") }
        return result.status == 0
    }

    func destroy() async {
        _ = await shell("'\(pgtmp)' destroy '\(primary)'; '\(pgtmp)' destroy '\(standby)'")
    }
}

@Suite("Failover", .serialized)
struct FailoverTests {
    @Test("a standby listed first is not served as the primary; promoted under load, callers see only UNAVAILABLE, the daemon follows without a restart, no acknowledged write is lost")
    func promotionUnderLoad() async throws {
        let pair = ReplicatedPair()
        defer { Task { await pair.destroy() } }
        try #require(await pair.start())
        #expect(await eventually(timeout: .seconds(30)) {
            await pair.psql(port: pair.primaryPort, "SELECT sync_state FROM pg_stat_replication") == "sync"
        }, "the standby never became a synchronous standby")
        #expect(await pair.psql(port: pair.standbyPort, "SELECT pg_is_in_recovery()") == "t")

        let socket = temporaryPath("failover") + ".sock"
        let daemon = try DaemonProcess([
            Binaries.steprund, "serve", "--database-url", pair.standbyFirstURL, "--unix-socket", socket, "--log-level", "warning",
        ])
        let target = StepRunClient.Target.unix(path: socket)
        let probe = StepRunClient(target: target, configuration: .init(defaultTimeout: .seconds(2), connectTimeout: .seconds(1)))
        #expect(await eventually(timeout: .seconds(30)) { (try? await probe.health().serving) == true }, "\(daemon.output)")

        // Served by the primary only: every write succeeds (a standby would refuse each one).
        let writers = Writers()
        async let load: Void = writers.run(count: 6, target: target, timeout: .seconds(5))
        #expect(await eventually(timeout: .seconds(30)) { await writers.acknowledged.count >= 40 })
        let failuresBefore = await writers.failures
        #expect(failuresBefore.isEmpty, "\(failuresBefore.prefix(3))")
        let onPrimary = await pair.psql(port: pair.primaryPort, "SELECT count(*) FROM steprun.step_runs")
        #expect((Int(onPrimary) ?? 0) >= 40, "\(onPrimary)")

        // The primary goes away: health says so (with why) while no primary answers.
        let stopped = ContinuousClock.now
        #expect(await shell("'\(pair.pgtmp)' stop '\(pair.primary)'").status == 0)
        var unhealthy: String?
        #expect(await eventually(timeout: .seconds(10)) {
            guard let reply = try? await probe.health(), !reply.serving else { return false }
            unhealthy = reply.message
            return true
        })
        #expect(unhealthy?.isEmpty == false)

        let promoting = ContinuousClock.now
        #expect(await shell("'\(pair.pgtmp)' promote '\(pair.standby)'").status == 0)
        let promoted = ContinuousClock.now
        #expect(await eventually(timeout: .seconds(15)) { (try? await probe.beginStep(runID: UUID(), step: "after")) != nil })
        let recovered = ContinuousClock.now
        #expect(await eventually(timeout: .seconds(10)) { (try? await probe.health().serving) == true })
        let resumed = await writers.acknowledged.count + 40
        #expect(await eventually(timeout: .seconds(30)) { await writers.acknowledged.count >= resumed })
        await writers.stop()
        await load

        let failures = await writers.failures
        #expect(failures.allSatisfy { $0.code == .unavailable }, "\(failures.filter { $0.code != .unavailable }.prefix(3))")
        let acknowledged = await writers.acknowledged
        #expect(try await lostWrites(acknowledged, via: target) == 0)
        print("""
            fault: failover — \(acknowledged.count) acknowledged writes, 0 lost, \(failures.count) UNAVAILABLE; \
            promote took \(promoted - promoting); writes served again \(recovered - promoted) after promotion, \
            \(recovered - stopped) after the primary stopped; health while down: \(unhealthy ?? "-")
            """)
        #expect(recovered - promoted < .seconds(5), "recovered \(recovered - promoted) after promotion")
        await probe.close()
        await daemon.terminate()
        await pair.destroy()
    }
}
