import StepRunCore

/// Execution path 3 of 4: a call run on the caller's own thread over a lent idle worker's
/// connection (`LentConnection`), when no call is running or waiting: the worker thread is not
/// woken and the answer does not hop back from it, which is most of a quiet call's latency.
///
/// The caller blocks at most `wait`; a call still unanswered then is handed over to the worker
/// with its statement in flight (`Started`). `run` only uses the connection and reports what
/// happened; the pool gives the connection back or hands it over (`PostgresPool.runInline`).
struct InlineCall {
    var request: StoreRequest
    var sql: StepRunSQL
    var deadline: ContinuousClock.Instant
    var wait: Duration
    var completion: StoreCompletion

    enum Outcome {
        /// Nothing was applied and the call is better run by the normal path: the connection was
        /// not ready, a prepared statement had gone stale, a write raced another, a read's
        /// connection broke.
        case declined
        /// The call's outcome, for its completion once the connection is given back.
        case answered(Result<StoreResult, StepRunError>)
        /// Not answered within `wait`: hand this over to the lent worker.
        case unfinished(Started)
    }

    /// An inline call whose statement is in flight on a worker's connection: the worker reads the
    /// result and answers.
    struct Started: Sendable {
        var request: StoreRequest
        var prepared: PreparedStatement
        var sql: StepRunSQL
        var deadline: ContinuousClock.Instant
        var completion: StoreCompletion

        func finish(on connection: PGConnection) {
            let outcome = StoreOperations.outcome(of: request, prepared, connection.finishResult())
            if !request.isReadOnly, AloneCall.isAborted(outcome) {
                // Postgres applied nothing: run it again as the normal path would.
                AloneCall(request: request, sql: sql, deadline: deadline, completion: completion).run(on: connection)
            } else {
                completion(outcome)
            }
        }
    }

    func run(on lent: borrowing LentConnection) -> Outcome {
        let connection = lent.connection
        let statement = StoreOperations.statement(for: request, sql: sql)
        guard connection.isUsable, connection.send(statement.prepared, statement.parameters) else { return .declined }
        guard let rows = connection.awaitResult(within: wait) else {
            return .unfinished(Started(request: request, prepared: statement.prepared, sql: sql, deadline: deadline, completion: completion))
        }
        // A read is safe to run again whatever happened; a write only if Postgres applied nothing
        // (ABORTED: a stale statement, a race, a deadlock). A write whose connection broke after it
        // was sent may have committed: its caller hears UNAVAILABLE, as on the normal path.
        let isRead = request.isReadOnly
        if isRead, case .failure(let error) = rows, error.connectionLost || error.isStalePlan { return .declined }
        let outcome = StoreOperations.outcome(of: request, statement.prepared, rows)
        if !isRead, AloneCall.isAborted(outcome) { return .declined }
        return .answered(outcome)
    }
}
