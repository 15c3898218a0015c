import StepRunCore

/// Execution path 2 of 4: several queued write calls in one transaction, so one commit (one WAL
/// flush) serves them all (see `AloneCall` for the others).
///
/// It works on the connection it is given and on `Call` values — a call's request, deadline and
/// completion — and knows nothing of the pool: the worker (`PoolWorker`) or the thread starting a
/// held group (`HeldGroupHandover`) passes in what it needs, `afterCommit` included.
///
/// Every call's outcome — success or an expected failure such as a stale step run — is held until
/// COMMIT succeeds, so nobody is told a write happened before it is durable. If the transaction
/// breaks for an unexpected reason (an SQL error, a deadlock with another group, a failed COMMIT),
/// it is rolled back and the calls are run again one by one, so only the call that really fails
/// sees an error.
///
/// Two groups on different connections can lock rows in opposite orders — under contention this is
/// common: one group claims step X and completes step Y while another claims Y and completes X.
/// Postgres would break such a deadlock only after `deadlock_timeout` (1 s by default), so a group
/// runs with a short `lock_timeout` instead: a group that has to wait longer than another group
/// takes to commit gives up and falls back to one-by-one, where each call is a single statement
/// that cannot deadlock with itself. Calls are also applied in a stable key order (run id, else
/// step run / attempt id), which makes such cycles rarer; the order among concurrent callers was
/// never defined, so nothing observable changes.
enum GroupCommit {
    /// How long a grouped statement may wait for a row lock before the group falls back: several
    /// times what a group needs to commit (a few milliseconds with its WAL flush), and the worst
    /// delay a deadlock between two groups adds (it was 100 ms: the claim-contended p99).
    static let lockTimeout = "20ms"

    // The group's frame, prepared once per connection so Postgres neither parses nor plans it again.
    static let begin = BoundStatement(PreparedStatement(name: "steprun_group_begin", sql: "BEGIN"), [])
    static let settings = BoundStatement(PreparedStatement(name: "steprun_group_settings", sql: """
        SELECT set_config('lock_timeout', '\(lockTimeout)', true)
        """), [])
    static let commit = BoundStatement(PreparedStatement(name: "steprun_group_commit", sql: "COMMIT"), [])

    /// Runs the group on `connection` and answers every caller: `start` then `finish`. Returns true
    /// when the group's writes committed together; false when it fell back to one by one.
    ///
    /// The whole group — BEGIN, the writes' statements, COMMIT, then the reads queued with them —
    /// goes to Postgres as one libpq pipeline: one round trip, however many calls. begin_step and
    /// complete_step calls on distinct keys (the hot path of every workflow) share one multi-row
    /// statement per kind, so Postgres plans and executes once for all of them. Reads run after
    /// COMMIT, each a statement of its own, so they see the group's writes as any later call would.
    /// A call whose statement raced a concurrent writer (it changed nothing; see
    /// `StoreOperations.decode`), or a read that failed, runs again by itself afterwards.
    @discardableResult
    static func run(
        _ calls: [Call], on connection: PGConnection, afterCommit: () -> Void = {}, onCommit: (Int) -> Void = { _ in }
    ) -> Bool {
        switch start(calls, on: connection) {
        case .started(let group): finish(group, on: connection, afterCommit: afterCommit, onCommit: onCommit)
        case .finished(let committed): committed
        }
    }

    /// What `start` left to do.
    enum Start: Sendable {
        /// The group's pipeline is in flight on the connection: `finish` reads its results.
        case started(Started)
        /// Every caller is answered already: nothing needed SQL, or sending failed (false).
        case finished(committed: Bool)
    }

    /// A group whose pipeline has been sent and not yet read.
    struct Started: Sendable {
        fileprivate var calls: [Call]
        fileprivate var writeCount: Int
        fileprivate var statements: [StatementPlan]
        fileprivate var writeStatementCount: Int
        /// Where each statement's outcome sits in the pipeline's results.
        fileprivate var positions: [Int]
        fileprivate var stepCount: Int
        /// Steps up to and including COMMIT: all must succeed for the writes to count.
        fileprivate var writePart: Int
        /// The small begin_step / complete_step calls (`PoolWork.smallSharedCalls`).
        let smallSharedCalls: Int

        /// When the last of its callers stops waiting.
        var latestDeadline: ContinuousClock.Instant {
            calls.map(\.deadline).max() ?? .now
        }

        /// Answers every caller of the group with `error` (the group cannot be finished).
        func fail(_ error: StepRunError) {
            for call in calls { call.completion(.failure(error)) }
        }
    }

    /// The first half of `run`: answers the calls that need no SQL, then builds the group's
    /// pipeline and sends it without waiting for any result. It may run on another thread than
    /// `finish` — the pool starts a worker's next group from the thread that sees the previous
    /// group commit (`HeldGroupHandover`).
    static func start(_ given: [Call], on connection: PGConnection) -> Start {
        var writes: [Call] = []
        var reads: [Call] = []
        writes.reserveCapacity(given.count)
        for call in given {
            if let answer = StoreOperations.answerWithoutSQL(call.request) {
                call.completion(.success(answer))
                continue
            }
            if call.request.isReadOnly { reads.append(call) } else { writes.append(call) }
        }
        writes.sort { $0.key < $1.key }
        let calls = writes + reads
        guard !calls.isEmpty else { return .finished(committed: true) }

        func step(_ statement: StatementPlan) -> BoundStatement {
            switch statement {
            case .single(let index):
                StoreOperations.statement(for: calls[index].request, sql: calls[index].sql)
            case .batch(let indices):
                StoreOperations.batchStatement(for: indices.map { calls[$0].request }, sql: calls[indices[0]].sql)
            }
        }
        let writeStatements = plan(writes.map { ($0.batchKind, $0.key) })
        let statements = writeStatements + reads.indices.map { StatementPlan.single(writes.count + $0) }
        var steps: [BoundStatement] = []
        steps.reserveCapacity(statements.count + 3)
        var positions: [Int] = []
        positions.reserveCapacity(statements.count)
        if !writes.isEmpty {
            // (Connections run with enable_seqscan off and generic plans: see PostgresConfiguration.)
            steps.append(Self.begin)
            steps.append(Self.settings)
        }
        for (number, statement) in statements.enumerated() {
            if number == writeStatements.count && !writes.isEmpty {
                steps.append(Self.commit)
            }
            positions.append(steps.count)
            steps.append(step(statement))
        }
        if reads.isEmpty && !writes.isEmpty {
            steps.append(Self.commit)
        }
        let group = Started(
            calls: calls, writeCount: writes.count, statements: statements, writeStatementCount: writeStatements.count,
            positions: positions, stepCount: steps.count,
            writePart: reads.isEmpty ? steps.count : positions[writeStatements.count],
            smallSharedCalls: calls.reduce(0) { $0 + $1.smallSharedCalls })
        do {
            try connection.prepare(steps)
        } catch {
            // Nothing of the group was sent: preparing a statement reads the table's definition,
            // so it can wait on a table lock, and be cancelled there (`StatementWatch`).
            group.fail(error.storeError(context: "preparing a group's statements; nothing was applied"))
            return .finished(committed: false)
        }
        do {
            try connection.sendPipeline(steps)
        } catch {
            // Some of it may have reached Postgres before the connection failed.
            failLost(group)
            return .finished(committed: false)
        }
        return .started(group)
    }

    /// The second half of `run`: reads the group's results, commits or falls back, and answers
    /// every caller.
    ///
    /// `onCommit(writes)` runs once two or more writes have committed together, before any caller
    /// is answered (statistics). `afterCommit` runs once the COMMIT's result has been read — before
    /// the results are decoded and the callers answered — so the pool can start the next group
    /// (`PoolStateMachine.holdThreshold`).
    @discardableResult
    static func finish(
        _ group: Started, on connection: PGConnection, afterCommit: () -> Void = {}, onCommit: (Int) -> Void = { _ in }
    ) -> Bool {
        let calls = group.calls
        let outcomes: [Result<PGRows, PGError>]
        do {
            // The write part ends with the COMMIT.
            let commit = group.writeCount == 0 ? nil : group.writePart - 1
            outcomes = try connection.receivePipeline(count: group.stepCount, hookAfter: commit, afterCommit)
        } catch {
            failLost(group)
            return false
        }
        let committed = connection.isIdle && outcomes[..<group.writePart].allSatisfy { if case .success = $0 { true } else { false } }
        guard committed else {
            // Nothing of the group was applied. Each call gets its own chance, on a working connection.
            if connection.isInTransaction {
                _ = try? connection.simpleQuery("ROLLBACK")
            }
            for call in calls {
                if connection.isIdle {
                    call.alone.run(on: connection)
                } else {
                    call.completion(.failure(.unavailable("the database connection was lost; the call was not applied")))
                }
            }
            return false
        }
        if group.writeCount >= 2 { onCommit(group.writeCount) }

        var rowsByCall: [PGRows?] = Array(repeating: nil, count: calls.count)
        for (number, statement) in group.statements.enumerated() {
            guard case .success(let rows) = outcomes[group.positions[number]] else { continue }
            switch statement {
            case .single(let index):
                rowsByCall[index] = rows
            case .batch(let indices):
                for (part, index) in zip(rows.split(byOrdinalIn: 1, count: indices.count), indices) {
                    rowsByCall[index] = part
                }
            }
        }
        var again: [AloneCall] = []
        for (index, call) in calls.enumerated() {
            guard let rows = rowsByCall[index] else {
                again.append(call.alone)  // a read that failed after the commit
                continue
            }
            do throws(StepRunError) {
                if let result = try StoreOperations.decode(call.request, rows) {
                    call.completion(.success(result))
                } else {
                    again.append(call.alone)
                }
            } catch {
                call.completion(.failure(error))
            }
        }
        for call in again { call.run(on: connection) }
        return true
    }

    /// The connection failed with the group in flight: COMMIT may or may not have happened.
    private static func failLost(_ group: Started) {
        for call in group.calls[..<group.writeCount] {
            call.completion(.failure(.unavailable("the database connection was lost during the call; it may or may not have been applied")))
        }
        for call in group.calls[group.writeCount...] {
            call.completion(.failure(.unavailable("the database connection was lost during the call")))
        }
    }

    /// One call of a group: what it asks, until when its caller waits, and its completion.
    struct Call: Sendable {
        var request: StoreRequest
        var sql: StepRunSQL
        var deadline: ContinuousClock.Instant
        var completion: StoreCompletion
        /// `StoreOperations.batchKind`: set for begin_step and complete_step calls with payloads up
        /// to 16 KiB, which share one multi-row statement per kind.
        var batchKind: Int?
        /// `StoreOperations.lockKey`, computed once.
        var key: LockKey
        /// `PoolWork.smallSharedCalls`: 1 for a small begin_step / complete_step call.
        var smallSharedCalls: Int

        init(request: StoreRequest, sql: StepRunSQL, deadline: ContinuousClock.Instant, completion: @escaping StoreCompletion) {
            self.request = request
            self.sql = sql
            self.deadline = deadline
            self.completion = completion
            self.batchKind = StoreOperations.batchKind(request)
            self.key = StoreOperations.lockKey(request)
            self.smallSharedCalls = StoreOperations.isSmallStepWrite(request) ? 1 : 0
        }

        /// The call run by itself (the group's fallback).
        var alone: AloneCall { AloneCall(request: request, sql: sql, deadline: deadline, completion: completion) }
    }

    /// How the group's writes become statements: a call by itself, or several calls of one kind
    /// in one multi-row statement (indices into the group's calls).
    enum StatementPlan: Equatable, Sendable {
        case single(Int)
        case batch([Int])
    }

    /// Splits a group's writes (their `StoreOperations.batchKind` and lock keys) into statements.
    /// Calls of one batch kind with distinct keys share one statement per kind (two or more of
    /// them; one runs by itself); a repeated key runs by itself, after the batch.
    static func plan(_ writes: [(kind: Int?, key: LockKey)]) -> [StatementPlan] {
        var batches: [Int: [Int]] = [:]
        var kinds: [Int] = []
        var seen: [Int: Set<LockKey>] = [:]
        var singles: [StatementPlan] = []
        for (index, write) in writes.enumerated() {
            if let kind = write.kind, seen[kind, default: Set(minimumCapacity: writes.count)].insert(write.key).inserted {
                if batches[kind] == nil { kinds.append(kind) }
                batches[kind, default: []].append(index)
            } else {
                singles.append(.single(index))
            }
        }
        let batched: [StatementPlan] = kinds.map { kind in
            let indices = batches[kind, default: []]
            return indices.count == 1 ? .single(indices[0]) : .batch(indices)
        }
        return batched + singles
    }
}
