import Foundation
import StepRunCore
import StepRunPostgres
import Testing
import StepRunTesting

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
        let outcome = try await BeginRace.run(minimumRounds: 3, maximumRounds: 12, within: .seconds(20), contenders: 64) { _, runID in
            switch existing {
            case .pending:
                _ = try await store.scheduleStep(runID: runID, step: "race", input: ["from": "schedule"])
            case .failed:
                let (first, _) = try await store.beginStep(runID: runID, step: "race")
                try await store.failStep(stepRunID: first.id, error: ["e": 1])
            }
        } begin: { delivery, runID in
            try await store.beginStep(runID: runID, step: "race", input: ["delivery": .int(Int64(delivery))])
        }
        #expect(
            outcome.problems.isEmpty,
            "\(outcome.problems.count) problems in \(outcome.rounds) rounds (\(outcome.skips) skips): \(outcome.problems.prefix(8))")
        await pool.shutdown()
    }
}
