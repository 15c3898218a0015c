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
        if case .transaction(let operations) = request {
            return .transaction(try transaction(operations))
        }
        if let answer = Self.answerWithoutSQL(request) { return answer }
        for _ in 0..<Self.raceRetries {
            let statement = Self.statement(for: request, sql: sql)
            let rows = try run(statement.prepared, statement.parameters)
            if let result = try Self.decode(request, rows) { return result }
        }
        throw .aborted("\(request.operationName) kept racing a concurrent writer; retry")
    }

    /// The answer for requests that need no database work (empty lists), else nil.
    static func answerWithoutSQL(_ request: StoreRequest) -> StoreResult? {
        switch request {
        case .scheduleSteps(_, let steps) where steps.isEmpty: .scheduledSteps([])
        case .deletePendingSteps(_, let steps) where steps.isEmpty: .deletedCount(0)
        default: nil
        }
    }

    /// The one statement a single-statement request runs (every request but `transaction`).
    ///
    /// Building it again gives fresh ids for inserted rows, so a re-run never reuses one.
    static func statement(for request: StoreRequest, sql: StepRunSQL) -> BoundStatement {
        let (prepared, parameters): (PreparedStatement, [PGParameter?]) = switch request {
        case .scheduleSteps(let runID, let steps):
            (sql.scheduleSteps, [
                .text(runID.pgText),
                .uuidArray(steps.map { _ in UUID.v7() }),
                .textArray(steps.map(\.step)),
                .jsonbArray(steps.map(\.input.text)),
                .jsonbArray(steps.map { $0.recovery?.text }),
            ])
        case .deletePendingSteps(let runID, let steps):
            (sql.deletePendingSteps, [.text(runID.pgText), .textArray(steps)])
        case .beginStep(let runID, let step, let input, let recovery):
            (sql.beginStep, texts(UUID.v7().pgText, runID.pgText, step, input.text, recovery?.text))
        case .scheduleStep(let runID, let step, let input, let recovery):
            (sql.scheduleStep, texts(UUID.v7().pgText, runID.pgText, step, input.text, recovery?.text))
        case .completeStep(let id, let output):
            (sql.completeStep, texts(id.pgText, output.text))
        case .completeManualStep(let id, let output, let manual):
            (sql.completeManualStep, texts(id.pgText, output.text, manual.text))
        case .failStep(let id, let error):
            (sql.failStep, texts(id.pgText, error.text))
        case .persistPauseResume(let id, let output, let target):
            (sql.persistPauseResume, texts(id.pgText, output.text, target.storedName))
        case .persistApprovalResume(let id, let okTarget, let errorTarget, let outputKey):
            (sql.persistApprovalResume, texts(id.pgText, okTarget.storedName, errorTarget.storedName, outputKey))
        case .recordFailureRecovery(let id, let strategy, let target):
            (sql.recordFailureRecovery, texts(id.pgText, strategy.rawValue, target))
        case .updateRecovery(let id, let recovery):
            (sql.updateRecovery, texts(id.pgText, recovery.text))
        case .getStepRun(let runID, let step):
            (sql.getStepRun, texts(runID.pgText, step))
        case .completedSteps:
            (sql.lists.completedSteps, ListPaging.parameters(for: request))
        case .completedOutputs:
            (sql.lists.completedOutputs, ListPaging.parameters(for: request))
        case .completedStepRunsForCompensation:
            (sql.lists.compensationOrder, ListPaging.parameters(for: request))
        case .stepStatuses:
            (sql.lists.stepStatuses, ListPaging.parameters(for: request))
        case .beginAttempt(let stepRunID):
            (sql.beginAttempt, texts(UUID.v7().pgText, stepRunID.pgText))
        case .completeAttempt(let attemptID):
            (sql.completeAttempt, texts(attemptID.pgText))
        case .failAttempt(let attemptID, let error):
            (sql.failAttempt, texts(attemptID.pgText, error.text))
        case .recordAttempt(let stepRunID, let number, let status, let error):
            (sql.recordAttempt, texts(UUID.v7().pgText, stepRunID.pgText, String(number), status.rawValue, error?.text))
        case .attemptCount(let stepRunID):
            (sql.attemptCount, texts(stepRunID.pgText))
        case .latestAttempt(let stepRunID):
            (sql.latestAttempt, texts(stepRunID.pgText))
        case .listAttempts:
            (sql.lists.listAttempts, ListPaging.parameters(for: request))
        case .purgeRun(let runID):
            (sql.purgeRun, texts(runID.pgText))
        case .transaction:
            preconditionFailure("a transaction is not one statement")
        }
        return BoundStatement(prepared, parameters)
    }

    /// Text parameters (nil is SQL NULL).
    private static func texts(_ values: String?...) -> [PGParameter?] {
        values.map { $0.map(PGParameter.text) }
    }

    /// The row a write locks first: groups apply their writes in this order, so two groups tend to
    /// take row locks in the same order. Also the key a multi-row statement needs distinct.
    static func lockKey(_ request: StoreRequest) -> LockKey {
        switch request {
        case .beginStep(let runID, let step, _, _), .scheduleStep(let runID, let step, _, _):
            LockKey(id: runID, step: step)
        case .scheduleSteps(let runID, _), .deletePendingSteps(let runID, _):
            LockKey(id: runID)
        case .completeStep(let id, _), .completeManualStep(let id, _, _), .failStep(let id, _),
            .persistPauseResume(let id, _, _), .persistApprovalResume(let id, _, _, _), .recordFailureRecovery(let id, _, _),
            .updateRecovery(let id, _), .beginAttempt(let id), .completeAttempt(let id), .failAttempt(let id, _),
            .recordAttempt(let id, _, _, _):
            LockKey(id: id)
        default:
            LockKey()
        }
    }

    /// Which multi-row statement a call can join (`batchStatement`), or nil. Calls of one kind
    /// with distinct `lockKey`s share one statement. Arrays go to Postgres in binary
    /// (`PGParameter`), so a payload costs about the same in a shared statement as in one of its
    /// own, and calls with payloads up to `maxSharedPayloadBytes` share. Larger ones run as
    /// statements of their own (in the group's pipeline and transaction): their payloads would be
    /// copied into the array here, and Postgres copies the statement's element list again.
    static func batchKind(_ request: StoreRequest) -> Int? {
        switch request {
        case .beginStep(_, _, let input, let recovery)
        where input.text.utf8.count + (recovery?.text.utf8.count ?? 0) <= maxSharedPayloadBytes:
            0
        case .completeStep(_, let output) where output.text.utf8.count <= maxSharedPayloadBytes:
            1
        default: nil
        }
    }

    /// The most payload bytes a call may carry and still join a multi-row statement. Measured
    /// (docs/PERFORMANCE.md, claim-complete): sharing is +10 % throughput at 10 KiB payloads, −10 %
    /// at 64 KiB and −11 % at 1 MiB. At 16 KiB the array of a group of the usual size (~15 calls
    /// of a kind at 32 clients) stays under the allocator's mmap threshold (256 KiB,
    /// `MemoryTuning`), so it costs no page faults; the largest groups (`group-commit-max`, 64)
    /// can reach 1 MiB.
    static let maxSharedPayloadBytes = 16 * 1024

    /// A begin_step or complete_step with at most 4 KiB of payload: Postgres' work for it is mostly
    /// the fixed part of the statement it shares, so it counts toward `group-hold` (gathering
    /// more of them pays), and it is short enough to run inline on a quiet pool
    /// (`PostgresPool.inlineWait`) without holding up the event loop's other connections.
    static func isSmallStepWrite(_ request: StoreRequest) -> Bool {
        switch request {
        case .beginStep(_, _, let input, let recovery):
            input.text.utf8.count + (recovery?.text.utf8.count ?? 0) <= maxSmallPayloadBytes
        case .completeStep(_, let output):
            output.text.utf8.count <= maxSmallPayloadBytes
        default:
            false
        }
    }

    /// The most payload bytes of a small step write.
    static let maxSmallPayloadBytes = 4096

    /// One statement for several calls of the same batchable kind with distinct keys. Its rows
    /// carry the 1-based position of their call in column 1 (see `PGRows.split(byOrdinalIn:count:)`).
    static func batchStatement(for requests: [StoreRequest], sql: StepRunSQL) -> BoundStatement {
        switch requests.first {
        case .beginStep?:
            var runIDs: [UUID] = [], steps: [String?] = [], inputs: [String?] = [], recoveries: [String?] = []
            runIDs.reserveCapacity(requests.count)
            steps.reserveCapacity(requests.count)
            inputs.reserveCapacity(requests.count)
            recoveries.reserveCapacity(requests.count)
            for case .beginStep(let runID, let step, let input, let recovery) in requests {
                runIDs.append(runID)
                steps.append(step)
                inputs.append(input.text)
                recoveries.append(recovery?.text)
            }
            return BoundStatement(sql.beginSteps, [
                .uuidArray(runIDs.map { _ in UUID.v7() }), .uuidArray(runIDs), .textArray(steps),
                .jsonbArray(inputs), .jsonbArray(recoveries),
            ])
        case .completeStep?:
            var ids: [UUID] = [], outputs: [String?] = []
            ids.reserveCapacity(requests.count)
            outputs.reserveCapacity(requests.count)
            for case .completeStep(let id, let output) in requests {
                ids.append(id)
                outputs.append(output.text)
            }
            return BoundStatement(sql.completeSteps, [.uuidArray(ids), .jsonbArray(outputs)])
        default:
            preconditionFailure("not a batchable request")
        }
    }

    /// Turns a statement's rows into the request's outcome; expected failures (not found, stale)
    /// are thrown. Nil means the statement raced a concurrent writer and changed nothing — it saw
    /// neither its own row nor the other's, or read a status that no longer holds — so it must run again.
    static func decode(_ request: StoreRequest, _ rows: PGRows) throws(StepRunError) -> StoreResult? {
        switch request {
        case .beginStep:
            guard rows.count > 0 else { return nil }
            let stepRun = try rows.stepRun(row: 0, from: 1)
            if try rows.text(0, 0) == "execute" { return .begin(stepRun, .execute) }
            // The skip branch reads the statement's snapshot. Its claim found the row running or
            // completed, so a pending or failed row there is from before a concurrent claim that
            // committed while the claim waited for its lock: read again (SPEC.md: the row after
            // the call). A running or completed one is a true answer as of the snapshot.
            guard stepRun.status == .running || stepRun.status == .completed else { return nil }
            return .begin(stepRun, .skip)
        case .scheduleStep:
            guard rows.count > 0 else { return nil }
            let decision: ScheduleDecision = try rows.text(0, 0) == "schedule" ? .schedule : .skip
            return .schedule(try rows.stepRun(row: 0, from: 1), decision)
        case .scheduleSteps(_, let steps):
            var inserted = Set<String>()
            for row in 0..<rows.count { inserted.insert(try rows.text(row, 0)) }
            return .scheduledSteps(steps.map(\.step).filter(inserted.contains))
        case .deletePendingSteps:
            return .deletedCount(try rows.int(0, 0))
        case .completeStep(let id, _), .completeManualStep(let id, _, _), .failStep(let id, _),
            .persistPauseResume(let id, _, _), .persistApprovalResume(let id, _, _, _):
            return try fenced(rows, id: id, fence: .running).map(StoreResult.stepRun)
        case .recordFailureRecovery(let id, _, _):
            return try fenced(rows, id: id, fence: .failed).map(StoreResult.stepRun)
        case .updateRecovery(let id, _):
            guard rows.count == 1 else { throw StepRunError.notFound("step run \(id.uuidString.lowercased()) does not exist") }
            return .stepRun(try rows.stepRun(row: 0, from: 1))

        case .getStepRun:
            return .foundStepRun(rows.count == 0 ? nil : try rows.stepRun(row: 0, from: 0))
        case .completedSteps, .completedOutputs, .completedStepRunsForCompensation, .stepStatuses, .listAttempts:
            return try ListPaging.decode(request, rows)

        case .beginAttempt(let stepRunID):
            guard rows.count == 1 else { throw missingStepRun(stepRunID) }
            return .attempt(try rows.attempt(row: 0, from: 0))
        case .completeAttempt(let attemptID), .failAttempt(let attemptID, _):
            guard rows.count == 1 else { throw StepRunError.notFound("attempt \(attemptID.uuidString.lowercased()) does not exist") }
            let attempt = try rows.attempt(row: 0, from: 1)
            if try rows.text(0, 0) == "ok" { return .attempt(attempt) }
            guard attempt.status == .running else { throw StepRunError.staleAttempt(status: attempt.status) }
            return nil
        case .recordAttempt(let stepRunID, let number, _, _):
            guard rows.count == 1 else { throw missingStepRun(stepRunID) }
            guard try rows.text(0, 0) == "ok" else {
                throw StepRunError.alreadyExists("attempt \(number) of step run \(stepRunID.uuidString.lowercased()) already exists")
            }
            return .attempt(try rows.attempt(row: 0, from: 1))
        case .attemptCount(let stepRunID):
            guard rows.count == 1 else { throw missingStepRun(stepRunID) }
            return .attemptCount(try rows.int(0, 0))
        case .latestAttempt(let stepRunID):
            guard rows.count == 1 else { throw missingStepRun(stepRunID) }
            return .latestAttempt(rows[0, 0] == nil ? nil : try rows.attempt(row: 0, from: 0))
        case .purgeRun:
            return .purged(PurgeCounts(stepRuns: try rows.int(0, 0), attempts: try rows.int(0, 1)))
        case .transaction:
            preconditionFailure("a transaction is not one statement")
        }
    }

    /// A fenced step-run update: the new row, or `staleStepRun` with the current status, or `notFound`.
    ///
    /// The stale branch reads the statement's snapshot; if that still shows the fence status, a
    /// concurrent writer changed the row after the snapshot (nil: read again for the true status).
    private static func fenced(_ rows: PGRows, id: UUID, fence: StepStatus) throws(StepRunError) -> StepRun? {
        guard rows.count == 1 else {
            throw StepRunError.notFound("step run \(id.uuidString.lowercased()) does not exist")
        }
        if try rows.text(0, 0) == "ok" {
            return try rows.stepRun(row: 0, from: 1)
        }
        let current = try rows.status(0, 4)
        guard current == fence else { throw StepRunError.staleStepRun(status: current) }
        return nil
    }

    /// Runs the operations in one database transaction; the first failure rolls everything back.
    private func transaction(_ operations: [StoreRequest]) throws(StepRunError) -> [StoreResult] {
        try simple("BEGIN", context: "starting a transaction")
        var results: [StoreResult] = []
        results.reserveCapacity(operations.count)
        // Each row fits a response on its own (StoreLimits.maxStepRunBytes), but several may not:
        // refused here, before COMMIT, rather than committed and then impossible to answer.
        var resultBytes = 64
        for (index, operation) in operations.enumerated() {
            do throws(StepRunError) {
                let result = try perform(operation)
                resultBytes += 16 + result.encodedSizeBound
                if let budget = sql.maxResponseBytes, resultBytes > budget {
                    throw StepRunError.invalidArgument(
                        field: "operations[\(index)]",
                        message: "the transaction's results would be at least \(resultBytes) bytes by operations[\(index)], "
                            + "over the response limit of \(budget) bytes; nothing was stored — split the transaction")
                }
                results.append(result)
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

    private func run(_ statement: PreparedStatement, _ parameters: [PGParameter?]) throws(StepRunError) -> PGRows {
        do {
            return try connection.execute(statement, parameters)
        } catch {
            throw error.storeError(context: Self.context(statement))
        }
    }

    /// The outcome of a statement whose result was collected elsewhere (an inline read), mapped
    /// and decoded exactly as `perform` would.
    static func outcome(
        of request: StoreRequest, _ statement: PreparedStatement, _ result: Result<PGRows, PGError>
    ) -> Result<StoreResult, StepRunError> {
        Result { () throws(StepRunError) in
            let rows: PGRows
            switch result {
            case .success(let value): rows = value
            case .failure(let error): throw error.storeError(context: context(statement))
            }
            // Only writes race (decode gives nil); a read answers from its snapshot.
            guard let decoded = try decode(request, rows) else { throw .aborted("\(request.operationName) raced a concurrent writer; retry") }
            return decoded
        }
    }

    private static func context(_ statement: PreparedStatement) -> String {
        "running \(statement.name.dropFirst("steprun_".count))"
    }

    private func simple(_ sql: String, context: String) throws(StepRunError) {
        try connection.simpleQuery(sql, context: context)
    }

    private static func missingStepRun(_ id: UUID) -> StepRunError {
        .notFound("step run \(id.uuidString.lowercased()) does not exist")
    }
}

/// The row a write locks first (`StoreOperations.lockKey`): a step by its run and name, or a row by
/// its id. Ordered by the UUID's bytes, then the step name — the order of their text forms
/// (`<uuid>/<step>` and `<uuid>`), built without the text.
struct LockKey: Hashable, Comparable, Sendable {
    /// Nil for a call that locks no row in particular; those sort first.
    var id: UUID?
    var step: String?

    init(id: UUID? = nil, step: String? = nil) {
        self.id = id
        self.step = step
    }

    static func < (lhs: LockKey, rhs: LockKey) -> Bool {
        switch (lhs.id, rhs.id) {
        case (nil, nil): return false
        case (nil, _): return true
        case (_, nil): return false
        case (let left?, let right?):
            let (l, r) = (halves(left), halves(right))
            if l != r { return l < r }
            switch (lhs.step, rhs.step) {
            case (nil, nil), (_?, nil): return false
            case (nil, _?): return true
            case (let a?, let b?): return a < b
            }
        }
    }

    /// The 16 bytes as two big-endian integers: comparing them compares the bytes in order.
    private static func halves(_ id: UUID) -> (UInt64, UInt64) {
        withUnsafeBytes(of: id.uuid) { bytes in
            (UInt64(bigEndian: bytes.loadUnaligned(as: UInt64.self)),
             UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }
}
