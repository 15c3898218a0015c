import Foundation
import StepRunCore
import StepRunPostgres
import Testing

/// begin_step racing itself on a row that already exists (SPEC.md, begin_step): the row every
/// call returns is the row as it stands after the call, so a `skip` never carries the `pending`
/// or `failed` status the winner's claim just replaced. The stale answer showed in a few percent
/// of the skips of a 64-way race, so each case runs several rounds (bounded in time).
@Suite("begin_step races on an existing row")
struct ClaimRaceTests {
    /// How the pool runs the calls: grouped (group commit and inline writes, the defaults) or
    /// one statement per call.
    enum Path: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case grouped
        case oneByOne
        var testDescription: String { rawValue }

        var configuration: PostgresConfiguration {
            get throws {
                switch self {
                case .grouped:
                    PostgresConfiguration(connectionString: try TestDatabase.url, poolSize: 8)
                case .oneByOne:
                    PostgresConfiguration(
                        connectionString: try TestDatabase.url, poolSize: 8, groupCommitMax: 1, inlineReadWait: .zero, inlineWriteWait: .zero)
                }
            }
        }
    }

    enum Existing: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case pending
        case failed
        var testDescription: String { rawValue }
    }

    @Test("64 concurrent begin_step on an existing row: one execute, one id, every skip running or completed",
          arguments: Path.allCases, Existing.allCases)
    func skipsCarryTheClaimedRow(_ path: Path, _ existing: Existing) async throws {
        let pool = PostgresPool(configuration: try path.configuration, logger: TestDatabase.logger)
        try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger)
        let store = StepRunRepository(pool: pool)
        var problems: [String] = []
        var rounds = 0
        var skips = 0
        let end = ContinuousClock.now.advanced(by: .seconds(20))
        while rounds < 12 && (rounds < 3 || ContinuousClock.now < end) {
            rounds += 1
            let runID = UUID()
            switch existing {
            case .pending:
                _ = try await store.scheduleStep(runID: runID, step: "race", input: ["from": "schedule"])
            case .failed:
                let (first, _) = try await store.beginStep(runID: runID, step: "race")
                try await store.failStep(stepRunID: first.id, error: ["e": 1])
            }
            let results = try await withThrowingTaskGroup(of: (StepRun, BeginDecision).self) { group in
                for delivery in 0..<64 {
                    group.addTask {
                        try await store.beginStep(runID: runID, step: "race", input: ["delivery": .int(Int64(delivery))])
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let executes = results.filter { $0.1 == .execute }
            if executes.count != 1 { problems.append("round \(rounds): \(executes.count) executes") }
            if Set(results.map(\.0.id)).count != 1 { problems.append("round \(rounds): several ids") }
            for (stepRun, decision) in results where decision == .skip {
                skips += 1
                if stepRun.status != .running && stepRun.status != .completed {
                    problems.append("round \(rounds): a skip carried \(stepRun.status)")
                }
            }
        }
        #expect(problems.isEmpty, "\(problems.count) problems in \(rounds) rounds (\(skips) skips): \(problems.prefix(8))")
        await pool.shutdown()
    }
}
