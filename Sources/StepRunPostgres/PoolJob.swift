import Dispatch
import Foundation
import Logging
import StepRunCore
import Synchronization

/// Holds one worker's connection. Whoever the state machine counts the worker as busy for — the
/// worker itself, or a caller it is lent to — is the only one touching it; the state lock hands it over.
final class ConnectionSlot: @unchecked Sendable {
    var connection: PGConnection?
}

/// One caller's work, owned by exactly one of: a worker, the expiry timer, cancellation, shutdown.
final class PoolJob: Sendable, PoolWork {
    enum Work: Sendable {
        /// Arbitrary work on the connection (migrations, health, tests), and how to tell its caller it failed.
        case connection(run: @Sendable (PGConnection) -> Void, fail: @Sendable (StepRunError) -> Void)
        /// A store request and where its outcome goes.
        case store(StoreRequest, StepRunSQL, @Sendable (Result<StoreResult, StepRunError>) -> Void)
        /// A call whose statement a caller sent on this worker's connection (`runInline`) and did
        /// not see answered in time: the worker reads the result and answers.
        case finishStarted(StoreRequest, PreparedStatement, StepRunSQL, @Sendable (Result<StoreResult, StepRunError>) -> Void)
        /// A group another thread sent on this worker's connection (`PostgresPool.startNextGroup`):
        /// the worker reads its results and answers its callers (`GroupCommit.finish`).
        case finishGroup(GroupCommit.Started)
    }

    let deadline: ContinuousClock.Instant
    let work: Work
    /// Single-statement writes may share a transaction, and reads may ride along in the same round
    /// trip; a `transaction` call has its own BEGIN/COMMIT, and `purge_run` runs by itself.
    let isBatchable: Bool
    /// `StoreOperations.batchKind`: set for begin_step and complete_step calls with payloads up to
    /// 16 KiB, which share one multi-row statement per kind in a group.
    let batchKind: Int?
    /// `PoolWork.smallSharedCalls`: 1 for a small begin_step / complete_step call, the count of a
    /// group started elsewhere.
    let smallSharedCalls: Int

    /// Works out what the pool's state machine asks of the job here, before it is submitted, so
    /// none of it runs under the pool's lock.
    init(deadline: ContinuousClock.Instant, work: Work) {
        self.deadline = deadline
        self.work = work
        switch work {
        case .store(let request, _, _):
            isBatchable = request.isTransactional || request.isReadOnly
            batchKind = StoreOperations.batchKind(request)
            smallSharedCalls = StoreOperations.isSmallStepWrite(request) ? 1 : 0
        case .finishGroup(let group):
            isBatchable = false
            batchKind = nil
            smallSharedCalls = group.smallSharedCalls
        case .connection, .finishStarted:
            isBatchable = false
            batchKind = nil
            smallSharedCalls = 0
        }
    }

    /// Answers the caller with an error; the work does not run.
    func fail(_ error: StepRunError) {
        switch work {
        case .connection(_, let fail): fail(error)
        case .store(_, _, let deliver), .finishStarted(_, _, _, let deliver): deliver(.failure(error))
        case .finishGroup(let group): group.fail(error)
        }
    }

    /// The jobs whose caller still waits; the others are answered `DEADLINE_EXCEEDED`.
    static func failingExpired(_ jobs: [PoolJob]) -> [PoolJob] {
        let now = ContinuousClock.now
        var live: [PoolJob] = []
        live.reserveCapacity(jobs.count)
        for job in jobs {
            if job.deadline > now {
                live.append(job)
            } else {
                job.fail(.deadlineExceeded("no database connection became free before the deadline"))
            }
        }
        return live
    }

    static func isAborted(_ outcome: Result<StoreResult, StepRunError>) -> Bool {
        switch outcome {
        case .failure(.aborted), .failure(.transactionFailed(_, cause: .aborted)): true
        default: false
        }
    }

    /// The latest deadline among the callers this job answers (`StatementWatch`): a group's
    /// pipeline serves all of its callers.
    var latestDeadline: ContinuousClock.Instant {
        if case .finishGroup(let group) = work { return max(deadline, group.latestDeadline) }
        return deadline
    }

    /// True for a job that must run on the connection as it is, in-flight statement and all
    /// (`finishInFlight`).
    var continuesStartedStatement: Bool {
        switch work {
        case .finishStarted, .finishGroup: true
        case .connection, .store: false
        }
    }

    /// Runs the job by itself (autocommit) and answers its caller.
    ///
    /// A single statement can still lose a deadlock or serialization race against a group holding
    /// locks, or meet a statement prepared before a migration changed the table; Postgres then
    /// applied nothing of it, so it is run again (a few times, briefly spaced). So is a
    /// `transaction` call that failed that way: it was rolled back whole.
    func runAlone(on connection: PGConnection) {
        // Nobody waits for it any more (a group's fallback after its statement was cancelled, say):
        // running it would only hold the connection, and a write might then commit unasked.
        guard deadline > ContinuousClock.now else {
            fail(.deadlineExceeded("the deadline passed before the call ran; it was not applied"))
            return
        }
        switch work {
        case .connection(let body, _):
            body(connection)
        case .store(let request, let sql, let deliver):
            var outcome = Result { () throws(StepRunError) in try StoreOperations(connection: connection, sql: sql).perform(request) }
            var retries = 0
            while Self.isAborted(outcome), retries < 5, connection.isIdle, deadline > ContinuousClock.now {
                retries += 1
                usleep(UInt32(1000 * retries))
                outcome = Result { () throws(StepRunError) in try StoreOperations(connection: connection, sql: sql).perform(request) }
            }
            deliver(outcome)
        case .finishStarted, .finishGroup:
            preconditionFailure("work already in flight is finished by finishInFlight")
        }
    }

    /// Reads the answer of work another thread sent on this connection and answers its callers:
    /// an inline call that ran out of time (`runInline`) or a group (`startNextGroup`).
    func finishInFlight(on connection: PGConnection, afterCommit: () -> Void, onCommit: (Int) -> Void) {
        switch work {
        case .finishStarted(let request, let statement, let sql, let deliver):
            let outcome = StoreOperations.outcome(of: request, statement, connection.finishResult())
            if !request.isReadOnly, Self.isAborted(outcome) {
                // Postgres applied nothing: run it again as the normal path would (`runAlone`).
                PoolJob(deadline: deadline, work: .store(request, sql, deliver)).runAlone(on: connection)
            } else {
                deliver(outcome)
            }
        case .finishGroup(let group):
            GroupCommit.finish(group, on: connection, afterCommit: afterCommit, onCommit: onCommit)
        case .connection, .store:
            preconditionFailure("nothing is in flight for this job")
        }
    }
}
