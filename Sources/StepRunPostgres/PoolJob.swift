import Foundation
import StepRunCore

/// Holds one worker's connection. Whoever the state machine counts the worker as busy for — the
/// worker itself, or the holder of a `LentConnection` for it — is the only one touching it; the
/// state lock hands it over.
final class ConnectionSlot: @unchecked Sendable {
    var connection: PGConnection?
}

/// One caller's work, owned by exactly one of: a worker, the expiry timer, cancellation, shutdown.
/// Which execution path runs it is decided by its kind and by the state machine (one job alone,
/// several together), and carried out by the path's own type.
final class PoolJob: Sendable, PoolWork {
    enum Work: Sendable {
        /// Arbitrary work on the connection (migrations, health, tests), and how to tell its caller it failed.
        case connection(run: @Sendable (PGConnection) -> Void, fail: @Sendable (StepRunError) -> Void)
        /// A store request and its completion: `AloneCall`, or one call of a `GroupCommit`. Made
        /// on the caller's thread (with what a group needs to know of it: its statement kind and
        /// lock key), so none of that runs on the worker or under the pool's lock.
        case store(GroupCommit.Call)
        /// An inline call handed over with its statement in flight (`InlineCall.Started`).
        case finishInline(InlineCall.Started)
        /// A group another thread sent on this worker's connection (`HeldGroupHandover`).
        case finishGroup(GroupCommit.Started)
    }

    let deadline: ContinuousClock.Instant
    let work: Work
    /// Single-statement writes may share a transaction, and reads may ride along in the same round
    /// trip; a `transaction` call has its own BEGIN/COMMIT, and `purge_run` runs by itself.
    let isBatchable: Bool
    /// `PoolWork.smallSharedCalls`: 1 for a small begin_step / complete_step call, the count of a
    /// group started elsewhere.
    let smallSharedCalls: Int

    /// Works out what the pool's state machine asks of the job here, before it is submitted, so
    /// none of it runs under the pool's lock.
    init(deadline: ContinuousClock.Instant, work: Work) {
        self.deadline = deadline
        self.work = work
        switch work {
        case .store(let call):
            isBatchable = call.request.isTransactional || call.request.isReadOnly
            smallSharedCalls = call.smallSharedCalls
        case .finishGroup(let group):
            isBatchable = false
            smallSharedCalls = group.smallSharedCalls
        case .connection, .finishInline:
            isBatchable = false
            smallSharedCalls = 0
        }
    }

    /// Answers the caller with an error; the work does not run.
    func fail(_ error: StepRunError) {
        switch work {
        case .connection(_, let fail): fail(error)
        case .store(let call): call.completion(.failure(error))
        case .finishInline(let started): started.completion(.failure(error))
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
        case .finishInline, .finishGroup: true
        case .connection, .store: false
        }
    }

    /// As one call of a group (only batchable store calls are taken together).
    var groupCall: GroupCommit.Call {
        guard case .store(let call) = work else { preconditionFailure("only store calls are grouped") }
        return call
    }

    /// Runs the job by itself on a connection the worker owns, and answers its caller.
    func runAlone(on connection: PGConnection) {
        switch work {
        case .connection(let body, let fail):
            guard deadline > ContinuousClock.now else {
                fail(.deadlineExceeded("the deadline passed before the call ran; it was not applied"))
                return
            }
            body(connection)
        case .store(let call):
            call.alone.run(on: connection)
        case .finishInline, .finishGroup:
            preconditionFailure("work already in flight is finished by finishInFlight")
        }
    }

    /// Reads the answer of work another thread sent on this connection and answers its callers.
    func finishInFlight(on connection: PGConnection, afterCommit: () -> Void, onCommit: (Int) -> Void) {
        switch work {
        case .finishInline(let started):
            started.finish(on: connection)
        case .finishGroup(let group):
            GroupCommit.finish(group, on: connection, afterCommit: afterCommit, onCommit: onCommit)
        case .connection, .store:
            preconditionFailure("nothing is in flight for this job")
        }
    }
}
