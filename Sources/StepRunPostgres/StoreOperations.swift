import Foundation
import StepRunCore

/// Runs one validated request on one connection, synchronously, on a pool thread.
struct StoreOperations {
    let connection: PGConnection
    let sql: StepRunSQL

    /// How often a statement is re-run when a concurrent transaction committed between its snapshot
    /// and its row lock (it then sees neither its own change nor the other's row). One retry almost
    /// always suffices; the bound only guards against a livelock bug.
    private static let raceRetries = 20

    func perform(_ request: StoreRequest) throws(StepRunError) -> StoreResult {
        switch request {
        case .beginStep(let runID, let step, let input, let recovery):
            let rows = try untilVisible("begin_step") { () throws(StepRunError) in
                try run(sql.beginStep, [UUID.v7().uuidString, runID.uuidString, step, input.text, recovery?.text])
            }
            let decision: BeginDecision = try rows.text(0, 0) == "execute" ? .execute : .skip
            return .begin(try rows.stepRun(row: 0, from: 1), decision)

        case .scheduleStep(let runID, let step, let input, let recovery):
            let rows = try untilVisible("schedule_step") { () throws(StepRunError) in
                try run(sql.scheduleStep, [UUID.v7().uuidString, runID.uuidString, step, input.text, recovery?.text])
            }
            let decision: ScheduleDecision = try rows.text(0, 0) == "schedule" ? .schedule : .skip
            return .schedule(try rows.stepRun(row: 0, from: 1), decision)

        case .scheduleSteps(let runID, let steps):
            guard !steps.isEmpty else { return .scheduledSteps([]) }
            let rows = try run(sql.scheduleSteps, [
                runID.uuidString,
                PGArrayLiteral.encode(steps.map { _ in UUID.v7().uuidString }),
                PGArrayLiteral.encode(steps.map(\.step)),
                PGArrayLiteral.encode(steps.map(\.input.text)),
                PGArrayLiteral.encode(steps.map { $0.recovery?.text }),
            ])
            var inserted = Set<String>()
            for row in 0..<rows.count { inserted.insert(try rows.text(row, 0)) }
            return .scheduledSteps(steps.map(\.step).filter(inserted.contains))

        case .deletePendingSteps(let runID, let steps):
            guard !steps.isEmpty else { return .deletedCount(0) }
            let rows = try run(sql.deletePendingSteps, [runID.uuidString, PGArrayLiteral.encode(steps)])
            return .deletedCount(try rows.int(0, 0))

        case .completeStep(let id, let output):
            return .stepRun(try fenced(sql.completeStep, fence: .running, [id.uuidString, output.text]))
        case .completeManualStep(let id, let output, let manual):
            return .stepRun(try fenced(sql.completeManualStep, fence: .running, [id.uuidString, output.text, manual.text]))
        case .failStep(let id, let error):
            return .stepRun(try fenced(sql.failStep, fence: .running, [id.uuidString, error.text]))
        case .persistPauseResume(let id, let output, let target):
            return .stepRun(try fenced(sql.persistPauseResume, fence: .running, [id.uuidString, output.text, target.storedName]))
        case .persistApprovalResume(let id, let okTarget, let errorTarget, let outputKey):
            return .stepRun(
                try fenced(
                    sql.persistApprovalResume, fence: .running,
                    [id.uuidString, okTarget.storedName, errorTarget.storedName, outputKey]))
        case .recordFailureRecovery(let id, let strategy, let target):
            return .stepRun(try fenced(sql.recordFailureRecovery, fence: .failed, [id.uuidString, strategy.rawValue, target]))
        case .updateRecovery(let id, let recovery):
            let rows = try run(sql.updateRecovery, [id.uuidString, recovery.text])
            guard rows.count == 1 else { throw StepRunError.notFound("step run \(id.uuidString.lowercased()) does not exist") }
            return .stepRun(try rows.stepRun(row: 0, from: 1))

        case .getStepRun(let runID, let step):
            let rows = try run(sql.getStepRun, [runID.uuidString, step])
            return .foundStepRun(rows.count == 0 ? nil : try rows.stepRun(row: 0, from: 0))
        case .completedSteps(let runID):
            let rows = try run(sql.completedSteps, [runID.uuidString])
            return .steps(try (0..<rows.count).map { (row) throws(StepRunError) in try rows.text(row, 0) })
        case .completedOutputs(let runID):
            let rows = try run(sql.completedOutputs, [runID.uuidString])
            return .outputs((0..<rows.count).map { rows.payload($0, 0) ?? .empty })
        case .completedStepRunsForCompensation(let runID):
            let rows = try run(sql.compensationOrder, [runID.uuidString])
            return .stepRuns(try (0..<rows.count).map { (row) throws(StepRunError) in try rows.stepRun(row: row, from: 0) })
        case .stepStatuses(let runID):
            let rows = try run(sql.stepStatuses, [runID.uuidString])
            var statuses: [String: StepStatus] = [:]
            for row in 0..<rows.count {
                statuses[try rows.text(row, 0)] = try rows.status(row, 1)
            }
            return .statuses(statuses)

        case .beginAttempt(let stepRunID):
            let rows = try run(sql.beginAttempt, [UUID.v7().uuidString, stepRunID.uuidString])
            guard rows.count == 1 else { throw Self.missingStepRun(stepRunID) }
            return .attempt(try rows.attempt(row: 0, from: 0))
        case .completeAttempt(let attemptID):
            return .attempt(try fencedAttempt(sql.completeAttempt, [attemptID.uuidString]))
        case .failAttempt(let attemptID, let error):
            return .attempt(try fencedAttempt(sql.failAttempt, [attemptID.uuidString, error.text]))
        case .recordAttempt(let stepRunID, let number, let status, let error):
            let rows = try run(sql.recordAttempt, [UUID.v7().uuidString, stepRunID.uuidString, String(number), status.rawValue, error?.text])
            guard rows.count == 1 else { throw Self.missingStepRun(stepRunID) }
            guard try rows.text(0, 0) == "ok" else {
                throw StepRunError.alreadyExists("attempt \(number) of step run \(stepRunID.uuidString.lowercased()) already exists")
            }
            return .attempt(try rows.attempt(row: 0, from: 1))
        case .attemptCount(let stepRunID):
            let rows = try run(sql.attemptCount, [stepRunID.uuidString])
            guard rows.count == 1 else { throw Self.missingStepRun(stepRunID) }
            return .attemptCount(try rows.int(0, 0))
        case .latestAttempt(let stepRunID):
            let rows = try run(sql.latestAttempt, [stepRunID.uuidString])
            guard rows.count == 1 else { throw Self.missingStepRun(stepRunID) }
            return .latestAttempt(rows[0, 0] == nil ? nil : try rows.attempt(row: 0, from: 0))
        case .listAttempts(let stepRunID):
            let rows = try run(sql.listAttempts, [stepRunID.uuidString])
            guard rows.count >= 1 else { throw Self.missingStepRun(stepRunID) }
            if rows.count == 1 && rows[0, 0] == nil { return .attempts([]) }
            return .attempts(try (0..<rows.count).map { (row) throws(StepRunError) in try rows.attempt(row: row, from: 0) })

        case .purgeRun(let runID):
            let rows = try run(sql.purgeRun, [runID.uuidString])
            return .purged(PurgeCounts(stepRuns: try rows.int(0, 0), attempts: try rows.int(0, 1)))

        case .transaction(let operations):
            return .transaction(try transaction(operations))
        }
    }

    /// Runs the operations in one database transaction; the first failure rolls everything back.
    private func transaction(_ operations: [StoreRequest]) throws(StepRunError) -> [StoreResult] {
        try simple("BEGIN", context: "starting a transaction")
        var results: [StoreResult] = []
        results.reserveCapacity(operations.count)
        for (index, operation) in operations.enumerated() {
            do {
                results.append(try perform(operation))
            } catch {
                try? simple("ROLLBACK", context: "rolling back a transaction")
                throw .transactionFailed(index: index, cause: error)
            }
        }
        do {
            try simple("COMMIT", context: "committing a transaction")
        } catch {
            try? simple("ROLLBACK", context: "rolling back a transaction")
            throw error
        }
        return results
    }

    // MARK: Statement helpers

    private func run(_ statement: PreparedStatement, _ parameters: [String?]) throws(StepRunError) -> PGRows {
        do {
            return try connection.execute(statement, parameters)
        } catch {
            throw error.storeError(context: "running \(statement.name.dropFirst("steprun_".count))")
        }
    }

    private func simple(_ sql: String, context: String) throws(StepRunError) {
        try connection.simpleQuery(sql, context: context)
    }

    /// Re-runs an insert-or-read statement until its row is visible (see `raceRetries`).
    private func untilVisible(_ name: String, _ body: () throws(StepRunError) -> PGRows) throws(StepRunError) -> PGRows {
        for _ in 0..<Self.raceRetries {
            let rows = try body()
            if rows.count > 0 { return rows }
        }
        throw .aborted("\(name) kept racing a concurrent writer; retry")
    }

    /// A fenced step-run update: the new row, or `staleStepRun` with the current status, or `notFound`.
    private func fenced(_ statement: PreparedStatement, fence: StepStatus, _ parameters: [String?]) throws(StepRunError) -> StepRun {
        for _ in 0..<Self.raceRetries {
            let rows = try run(statement, parameters)
            guard rows.count == 1 else {
                throw StepRunError.notFound("step run \(parameters[0]?.lowercased() ?? "") does not exist")
            }
            let current = try rows.status(0, 4)
            if try rows.text(0, 0) == "ok" {
                return try rows.stepRun(row: 0, from: 1)
            }
            // The stale branch reads the statement's snapshot; if that still shows the fence status,
            // a concurrent writer changed the row after the snapshot: read again for the true status.
            if current != fence {
                throw StepRunError.staleStepRun(status: current)
            }
        }
        throw .aborted("the step run kept changing under a concurrent writer; retry")
    }

    /// A fenced attempt update: the new attempt, or `staleAttempt` with the current status, or `notFound`.
    private func fencedAttempt(_ statement: PreparedStatement, _ parameters: [String?]) throws(StepRunError) -> StepAttempt {
        for _ in 0..<Self.raceRetries {
            let rows = try run(statement, parameters)
            guard rows.count == 1 else {
                throw StepRunError.notFound("attempt \(parameters[0]?.lowercased() ?? "") does not exist")
            }
            let attempt = try rows.attempt(row: 0, from: 1)
            if try rows.text(0, 0) == "ok" { return attempt }
            if attempt.status != .running { throw StepRunError.staleAttempt(status: attempt.status) }
        }
        throw .aborted("the attempt kept changing under a concurrent writer; retry")
    }

    private static func missingStepRun(_ id: UUID) -> StepRunError {
        .notFound("step run \(id.uuidString.lowercased()) does not exist")
    }
}
