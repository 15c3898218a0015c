import StepRunCore
import Synchronization

extension PostgresPool {
    /// Runs `body` on a pooled connection's thread and returns its result.
    ///
    /// Throws `StepRunError`: `.resourceExhausted` when the wait queue is full, `.deadlineExceeded`
    /// when the deadline passes while waiting, `.cancelled` when the calling task is cancelled while
    /// waiting, `.unavailable` when the database cannot be reached or the pool is shut down.
    @discardableResult
    func withConnection<Result: Sendable>(
        deadline: ContinuousClock.Instant?,
        _ body: @escaping @Sendable (PGConnection) throws(StepRunError) -> Result
    ) async throws(StepRunError) -> Result {
        try await waitFor { (completion: @escaping @Sendable (Swift.Result<Result, StepRunError>) -> Void) in
            self.submit(deadline: deadline) { deadline in
                PoolJob(deadline: deadline, work: .connection(
                    run: { connection in completion(Swift.Result { () throws(StepRunError) in try body(connection) }) },
                    fail: { completion(.failure($0)) }))
            }
        }
    }

    /// Runs one store request on a pooled connection. Write requests that find others queued behind
    /// them share one transaction with them (group commit); each caller is answered after COMMIT.
    func perform(_ request: StoreRequest, sql: StepRunSQL, deadline: ContinuousClock.Instant?) async throws(StepRunError) -> StoreResult {
        try await waitFor { completion in self.start(request, sql: sql, deadline: deadline, completion: completion) }
    }

    /// Bridges a completion-based call to async/await, cancelling the call if the task is cancelled.
    private func waitFor<Value: Sendable>(
        _ begin: @escaping (@escaping @Sendable (Result<Value, StepRunError>) -> Void) -> UInt64
    ) async throws(StepRunError) -> Value {
        let call = Mutex(CallState.notStarted)
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, StepRunError>, Never>) in
                let id = begin { continuation.resume(returning: $0) }
                let cancelledEarly = call.withLock { state in
                    if case .cancelled = state { return true }
                    state = .started(id)
                    return false
                }
                if cancelledEarly { cancel(id) }
            }
        } onCancel: {
            let id = call.withLock { state -> UInt64? in
                if case .started(let id) = state { return id }
                state = .cancelled
                return nil
            }
            if let id { cancel(id) }
        }
        return try outcome.get()
    }
}

private enum CallState {
    case notStarted
    case started(UInt64)
    case cancelled
}
