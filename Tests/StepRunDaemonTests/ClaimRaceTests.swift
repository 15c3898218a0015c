import Foundation
import StepRunClient
import StepRunCore
import Testing
import StepRunTesting

/// Two steprund processes on one database, their clients racing begin_step on rows that already
/// exist (SPEC.md, begin_step): exactly one claim across both daemons, and every skip carries the
/// row as it stands after the call — running or completed, never the pending or failed row the
/// winner just claimed.
@Suite("Two daemons racing begin_step")
struct ClaimRaceTests {
    @Test("32 clients on each of two daemons race begin_step on an existing pending or failed row: one execute, one id, every skip running or completed")
    func twoDaemonsRaceOnExistingRows() async throws {
        let database = try testDatabaseURL()
        let sockets = [temporaryPath("race-a") + ".sock", temporaryPath("race-b") + ".sock"]
        let daemons = try sockets.map { socket in
            try DaemonProcess([Binaries.steprund, "serve", "--database-url", database, "--unix-socket", socket, "--log-level", "warning"])
        }
        for (daemon, socket) in zip(daemons, sockets) {
            #expect(await eventually { unixSocketAccepts(socket) }, "\(daemon.output)")
        }
        let clients = (0..<64).map { index in
            StepRunClient(target: .unix(path: sockets[index % 2]), configuration: .init(connectTimeout: .seconds(30)))
        }
        // Even rounds race on a pending row, odd ones on a failed row.
        let outcome = try await BeginRace.run(minimumRounds: 4, maximumRounds: 16, within: .seconds(30), contenders: clients.count) { round, runID in
            if round % 2 == 0 {
                _ = try await clients[0].scheduleStep(runID: runID, step: "race", input: ["from": "schedule"])
            } else {
                let (first, _) = try await clients[1].beginStep(runID: runID, step: "race")
                try await clients[1].failStep(stepRunID: first.id, error: ["e": 1])
            }
        } begin: { index, runID in
            try await clients[index].beginStep(runID: runID, step: "race", input: ["c": .int(Int64(index))])
        }
        #expect(outcome.problems.isEmpty, "\(outcome.problems.count) problems in \(outcome.rounds) rounds: \(outcome.problems.prefix(8))")
        for client in clients { await client.close() }
        for daemon in daemons { await daemon.terminate() }
    }
}
