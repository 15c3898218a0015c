import Foundation
import StepRunClient
import StepRunCore
import Testing
import StepRunTesting

@Suite("The SPEC's concurrency rules through the daemon")
struct ConcurrencyTests {
    @Test("64 concurrent clients claim one step: exactly one execute, one id", arguments: Transport.allCases)
    func sixtyFourClientsOneWinner(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let clients = (0..<64).map { _ in daemon.client(transport) }
        let runID = UUID()
        let results = try await withThrowingTaskGroup(of: (StepRun, BeginDecision).self) { group in
            for client in clients {
                group.addTask { try await client.beginStep(runID: runID, step: "once", input: ["c": 1]) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.filter { $0.1 == .execute }.count == 1)
        #expect(Set(results.map(\.0.id)).count == 1)
        for client in clients { await client.close() }
    }

    @Test("64 clients race begin_step on an existing pending or failed row: one execute, one id, every skip running or completed",
          arguments: ["pending", "failed"])
    func raceOnExistingRow(_ existing: String) async throws {
        let daemon = try await TestDaemon.shared()
        let clients = (0..<64).map { _ in daemon.client(.unix) }
        let outcome = try await BeginRace.run(minimumRounds: 3, maximumRounds: 10, within: .seconds(20), contenders: clients.count) { _, runID in
            if existing == "pending" {
                _ = try await clients[0].scheduleStep(runID: runID, step: "race", input: ["from": "schedule"])
            } else {
                let (first, _) = try await clients[0].beginStep(runID: runID, step: "race")
                try await clients[0].failStep(stepRunID: first.id, error: ["e": 1])
            }
        } begin: { index, runID in
            try await clients[index].beginStep(runID: runID, step: "race", input: ["c": .int(Int64(index))])
        }
        #expect(outcome.problems.isEmpty, "\(outcome.problems.count) problems in \(outcome.rounds) rounds: \(outcome.problems.prefix(8))")
        for client in clients { await client.close() }
    }

    @Test("64 tasks sharing one connection finish one step: exactly one wins, the rest see it completed", arguments: Transport.allCases)
    func multiplexedCompletions(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(transport)
        defer { Task { await client.close() } }
        let (stepRun, _) = try await client.beginStep(runID: UUID(), step: "s")
        let outcomes = await withTaskGroup(of: StepRunError?.self) { group in
            for worker in 0..<64 {
                group.addTask {
                    await storeError { try await client.completeStep(stepRunID: stepRun.id, output: ["w": .int(Int64(worker))]) }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 == nil }.count == 1)
        #expect(outcomes.filter { $0 == .staleStepRun(status: .completed) }.count == 63)
    }

    @Test("32 concurrent begin_attempt calls over one connection get 1…32", arguments: Transport.allCases)
    func attemptsNumberedConsecutively(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(transport)
        defer { Task { await client.close() } }
        let (stepRun, _) = try await client.beginStep(runID: UUID(), step: "s")
        let numbers = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<32 {
                group.addTask { try await client.beginAttempt(stepRunID: stepRun.id).attemptNumber }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(numbers.sorted() == Array(1...32))
    }
}
