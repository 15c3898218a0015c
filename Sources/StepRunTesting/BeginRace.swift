import Foundation
import StepRunCore

/// begin_step racing itself on a row that already exists (SPEC.md, begin_step), the check the
/// repository, end-to-end and two-daemon suites share: exactly one execute, one id, and every
/// skip carrying the row as it stands after the call — running or completed, never the pending
/// or failed row the winner's claim just replaced. The stale answer showed in a few percent of the
/// skips of a 64-way race, so the race runs several rounds, bounded in time.
public enum BeginRace {
    /// What several rounds found.
    public struct Outcome: Sendable {
        public var problems: [String] = []
        public var rounds = 0
        public var skips = 0
    }

    /// Runs at least `minimumRounds` and at most `maximumRounds` rounds, starting no new one after
    /// `within` once the minimum is done. Each round calls `prepare(round, runID)` to leave the
    /// row pending or failed, then `begin(contender, runID)` for each of `contenders` at once.
    public static func run(
        minimumRounds: Int, maximumRounds: Int, within: Duration, contenders: Int,
        prepare: (_ round: Int, _ runID: UUID) async throws -> Void,
        begin: @escaping @Sendable (_ contender: Int, _ runID: UUID) async throws -> (StepRun, BeginDecision)
    ) async throws -> Outcome {
        var outcome = Outcome()
        let end = ContinuousClock.now.advanced(by: within)
        while outcome.rounds < maximumRounds && (outcome.rounds < minimumRounds || ContinuousClock.now < end) {
            outcome.rounds += 1
            let runID = UUID()
            try await prepare(outcome.rounds, runID)
            let results = try await withThrowingTaskGroup(of: (StepRun, BeginDecision).self) { group in
                for contender in 0..<contenders {
                    group.addTask { try await begin(contender, runID) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            outcome.skips += results.filter { $0.1 == .skip }.count
            outcome.problems += problems(results, round: outcome.rounds)
        }
        return outcome
    }

    /// What is wrong with the answers of one round.
    public static func problems(_ results: [(StepRun, BeginDecision)], round: Int) -> [String] {
        var problems: [String] = []
        let executes = results.filter { $0.1 == .execute }.count
        if executes != 1 { problems.append("round \(round): \(executes) executes") }
        if Set(results.map(\.0.id)).count != 1 { problems.append("round \(round): several ids") }
        for (stepRun, decision) in results where decision == .skip && stepRun.status != .running && stepRun.status != .completed {
            problems.append("round \(round): a skip carried \(stepRun.status)")
        }
        return problems
    }
}
