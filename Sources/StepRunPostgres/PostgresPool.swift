import Dispatch
import Foundation
import Logging
import StepRunCore
import Synchronization

/// A fixed set of libpq connections, each owned by its own thread.
///
/// libpq calls block, so they never run on a Swift concurrency or NIO thread: a caller's work is
/// queued here and a worker thread runs it, then hands the outcome to the caller's completion (the
/// server writes it straight to its event loop; `perform` resumes a suspended task). The queue is
/// bounded (`RESOURCE_EXHAUSTED` when full) and every call has a deadline (`DEADLINE_EXCEEDED` if it
/// is still waiting when the deadline passes — one timer serves the whole queue). A worker whose
/// connection is lost reconnects with exponential backoff; until it succeeds its calls fail fast
/// with `UNAVAILABLE`.
public final class PostgresPool: Sendable {
    public let configuration: PostgresConfiguration
    let logger: Logger
    private let state: Mutex<PoolStateMachine<PoolJob>>
    private let wakeups: [DispatchSemaphore]
    /// Each worker's connection; used by the worker, or by a caller it is lent to (`runInline`).
    let slots: [ConnectionSlot]
    private let exited = DispatchGroup()
    private let nextJobID = Atomic<UInt64>(1)
    private let connectedCount = Atomic<Int>(0)
    /// Bumped by every successful connect, so workers waiting out a backoff learn the database is back.
    private let connectGeneration = Atomic<UInt64>(0)
    private let groupCommits = Atomic<Int>(0)
    private let groupCommittedCalls = Atomic<Int>(0)
    private let inlineReads = Atomic<Int>(0)
    private let inlineReadHandoffs = Atomic<Int>(0)
    private let inlineWrites = Atomic<Int>(0)
    private let inlineWriteHandoffs = Atomic<Int>(0)
    private let heldGroupHandovers = Atomic<Int>(0)
    /// Cancels running work whose callers have all stopped waiting.
    let watch: StatementWatch
    /// Fires at the earliest deadline of the queued calls (armed under the state lock). Dispatch
    /// sources may be scheduled and cancelled from any thread; the type is just not marked Sendable.
    private nonisolated(unsafe) let expiryTimer: any DispatchSourceTimer

    public init(configuration: PostgresConfiguration, logger: Logger) {
        precondition(configuration.poolSize >= 1, "pool size must be at least 1")
        self.configuration = configuration
        self.logger = logger
        self.state = Mutex(
            PoolStateMachine(
                workerCount: configuration.poolSize, maxWaitQueue: configuration.maxWaitQueue,
                maxBatch: configuration.maxGroupCommit, holdThreshold: configuration.groupHold > 0 ? configuration.groupHold : .max))
        self.wakeups = (0..<configuration.poolSize).map { _ in DispatchSemaphore(value: 0) }
        self.slots = (0..<configuration.poolSize).map { _ in ConnectionSlot() }
        self.watch = StatementWatch(workers: configuration.poolSize, logger: logger)
        self.expiryTimer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "steprun.pool.expiry"))
        expiryTimer.setEventHandler { [weak self] in self?.expireWaitingCalls() }
        expiryTimer.activate()
        for index in 0..<configuration.poolSize {
            exited.enter()
            let thread = Thread { [self] in
                // Set from the thread itself, Foundation passes the name on to the OS (top -H, perf).
                Thread.current.name = "steprun-pg-\(index)"
                var worker = PoolWorker(index: index, pool: self)
                worker.run()
                exited.leave()
            }
            thread.start()
        }
    }

    /// The current numbers of busy, idle and waiting.
    public var statistics: PoolStatistics {
        let (busy, idle, waiting) = state.withLock { ($0.busyCount, $0.idleCount, $0.waitingCount) }
        return PoolStatistics(
            size: configuration.poolSize, busy: busy, idle: idle, waiting: waiting,
            connected: connectedCount.load(ordering: .relaxed), groupCommits: groupCommits.load(ordering: .relaxed),
            groupCommittedCalls: groupCommittedCalls.load(ordering: .relaxed),
            inlineReads: inlineReads.load(ordering: .relaxed),
            inlineReadHandoffs: inlineReadHandoffs.load(ordering: .relaxed),
            inlineWrites: inlineWrites.load(ordering: .relaxed),
            inlineWriteHandoffs: inlineWriteHandoffs.load(ordering: .relaxed),
            heldGroupHandovers: heldGroupHandovers.load(ordering: .relaxed),
            cancelledStatements: watch.cancelledCount)
    }

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
        try await waitFor { (deliver: @escaping @Sendable (Swift.Result<Result, StepRunError>) -> Void) in
            self.submit(deadline: deadline) { deadline in
                PoolJob(deadline: deadline, work: .connection(
                    run: { connection in deliver(Swift.Result { () throws(StepRunError) in try body(connection) }) },
                    fail: { deliver(.failure($0)) }))
            }
        }
    }

    /// Runs one store request on a pooled connection. Write requests that find others queued behind
    /// them share one transaction with them (group commit); each caller is answered after COMMIT.
    func perform(_ request: StoreRequest, sql: StepRunSQL, deadline: ContinuousClock.Instant?) async throws(StepRunError) -> StoreResult {
        try await waitFor { deliver in self.start(request, sql: sql, deadline: deadline, completion: deliver) }
    }

    /// Starts one store request without waiting for it: `completion` is called exactly once, on a
    /// pool thread (or on the caller's thread if the call is refused at once). Returns the ticket
    /// that `cancel(_:)` takes.
    ///
    /// With `mayRunInline`, a read, or a begin_step / complete_step call, that finds the pool quiet
    /// runs on the calling thread instead, blocking it at most `inlineReadWait` / `inlineWriteWait`
    /// (see `runInline`).
    @discardableResult
    func start(
        _ request: StoreRequest, sql: StepRunSQL, deadline: ContinuousClock.Instant?, mayRunInline: Bool = false,
        completion: @escaping @Sendable (Result<StoreResult, StepRunError>) -> Void
    ) -> UInt64 {
        if mayRunInline, let wait = inlineWait(for: request), runInline(request, sql: sql, deadline: deadline, wait: wait, completion: completion) {
            return 0  // answered or handed to a worker: nothing left to cancel
        }
        return submit(deadline: deadline) { deadline in PoolJob(deadline: deadline, work: .store(request, sql, completion)) }
    }

    /// How long `request` may block its caller when it finds the pool quiet, or nil if it never runs
    /// inline: reads, and the small begin_step / complete_step calls of every workflow step (one
    /// statement in autocommit, which Postgres applies whole or not at all). Other writes take the
    /// pool path: multi-row ones can run long, and `transaction` calls are several statements.
    private func inlineWait(for request: StoreRequest) -> Duration? {
        let wait = request.isReadOnly
            ? configuration.inlineReadWait
            : StoreOperations.isSmallStepWrite(request) ? configuration.inlineWriteWait : .zero
        return wait > .zero ? wait : nil
    }

    /// Runs a call on the caller's thread over an idle worker's connection, when no call is running
    /// or waiting: the worker thread is not woken and the answer does not hop back from it, which
    /// is most of a quiet call's latency. The caller blocks at most `wait`; a call still unanswered
    /// then is left to the worker to finish. False (nothing done) when the pool is busy or the
    /// connection is not ready for it, and when Postgres applied nothing and the call is better
    /// run again by the normal path (a prepared statement gone stale, a write that raced another,
    /// a read whose connection broke); the call then takes that path.
    private func runInline(
        _ request: StoreRequest, sql: StepRunSQL, deadline: ContinuousClock.Instant?, wait: Duration,
        completion: @escaping @Sendable (Result<StoreResult, StepRunError>) -> Void
    ) -> Bool {
        guard let worker = state.withLock({ $0.lendIdleWorker() }) else { return false }
        let statement = StoreOperations.statement(for: request, sql: sql)
        guard let connection = slots[worker].connection, connection.isUsable,
            connection.send(statement.prepared, statement.parameters)
        else {
            giveBack(worker)
            return false
        }
        let isRead = request.isReadOnly
        guard let rows = connection.awaitResult(within: wait) else {
            countInline(isRead: isRead, handedOff: true)
            let job = PoolJob(
                deadline: effectiveDeadline(deadline), work: .finishStarted(request, statement.prepared, sql, completion))
            state.withLock { $0.handOff(job, to: worker) }
            wakeups[worker].signal()
            return true
        }
        giveBack(worker)
        // A read is safe to run again whatever happened; a write only if Postgres applied nothing
        // (ABORTED: a stale statement, a race, a deadlock). A write whose connection broke after it
        // was sent may have committed: its caller hears UNAVAILABLE, as on the normal path.
        if isRead, case .failure(let error) = rows, error.connectionLost || error.isStalePlan { return false }
        let outcome = StoreOperations.outcome(of: request, statement.prepared, rows)
        if !isRead, PoolJob.isAborted(outcome) { return false }
        countInline(isRead: isRead, handedOff: false)
        completion(outcome)
        return true
    }

    private func countInline(isRead: Bool, handedOff: Bool) {
        if isRead {
            inlineReads.add(1, ordering: .relaxed)
            if handedOff { inlineReadHandoffs.add(1, ordering: .relaxed) }
        } else {
            inlineWrites.add(1, ordering: .relaxed)
            if handedOff { inlineWriteHandoffs.add(1, ordering: .relaxed) }
        }
    }

    private func giveBack(_ worker: Int) {
        if state.withLock({ $0.giveBack(worker: worker) }) { wakeups[worker].signal() }
    }

    /// Fails a call that is still waiting for a connection with `CANCELLED`; a call a worker has
    /// already taken runs to its end (a write either commits or does not, never halfway).
    func cancel(_ ticket: UInt64) {
        guard ticket != 0 else { return }  // ran inline: nothing waits in the queue
        if let job = state.withLock({ $0.remove(id: ticket) }) {
            job.fail(.cancelled("the call was cancelled while waiting for a database connection"))
        }
    }

    /// Bridges a completion-based call to async/await, cancelling the call if the task is cancelled.
    private func waitFor<Value: Sendable>(
        _ begin: @escaping (@escaping @Sendable (Result<Value, StepRunError>) -> Void) -> UInt64
    ) async throws(StepRunError) -> Value {
        let ticket = Mutex(TicketState.notStarted)
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, StepRunError>, Never>) in
                let id = begin { continuation.resume(returning: $0) }
                let cancelledEarly = ticket.withLock { state in
                    if case .cancelled = state { return true }
                    state = .started(id)
                    return false
                }
                if cancelledEarly { cancel(id) }
            }
        } onCancel: {
            let id = ticket.withLock { state -> UInt64? in
                if case .started(let id) = state { return id }
                state = .cancelled
                return nil
            }
            if let id { cancel(id) }
        }
        return try outcome.get()
    }

    private enum TicketState {
        case notStarted
        case started(UInt64)
        case cancelled
    }

    /// A call's deadline, or the configured default for calls that bring none.
    private func effectiveDeadline(_ deadline: ContinuousClock.Instant?) -> ContinuousClock.Instant {
        deadline ?? .now.advanced(by: configuration.defaultTimeout)
    }

    private func submit(deadline: ContinuousClock.Instant?, makeJob: (ContinuousClock.Instant) -> PoolJob) -> UInt64 {
        let deadline = effectiveDeadline(deadline)
        let id = nextJobID.add(1, ordering: .relaxed).newValue
        let job = makeJob(deadline)
        guard deadline > .now else {
            job.fail(.deadlineExceeded("the deadline passed before the call reached the database"))
            return id
        }
        let action = state.withLock { machine in
            let action = machine.submit(job, id: id)
            if case .enqueued(armTimer: let instant?, _) = action { armExpiryTimer(at: instant) }
            return action
        }
        switch action {
        case .wake(let worker):
            wakeups[worker].signal()
        case .enqueued(_, let worker):
            if let worker { wakeups[worker].signal() }
        case .reject(.queueFull(let limit)):
            job.fail(.resourceExhausted("all database connections are busy and \(limit) calls are already waiting"))
        case .reject(.shuttingDown):
            job.fail(.unavailable("the database pool is shutting down"))
        }
        return id
    }

    /// Called with the state lock held, so the timer always ends up armed for the latest decision.
    private func armExpiryTimer(at instant: ContinuousClock.Instant) {
        let delay = max(.zero, instant - .now)
        expiryTimer.schedule(deadline: .now() + .nanoseconds(Int(clamping: delay.inNanoseconds)), leeway: .milliseconds(1))
    }

    private func expireWaitingCalls() {
        let expired = state.withLock { machine in
            let (expired, rearm) = machine.expire(now: .now)
            if let rearm { armExpiryTimer(at: rearm) }
            return expired
        }
        for job in expired {
            job.fail(.deadlineExceeded("no database connection became free before the deadline"))
        }
    }

    /// Fails waiting calls, lets running calls finish, closes every connection and joins the threads.
    public func shutdown() async {
        let (queued, wake) = state.withLock { $0.shutdown() }
        for job in queued {
            job.fail(.unavailable("the database pool is shutting down"))
        }
        for worker in wake {
            wakeups[worker].signal()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            exited.notify(queue: .global()) { continuation.resume() }
        }
        expiryTimer.cancel()
        logger.debug("database pool closed")
    }

    // MARK: Worker side

    func nextAction(worker: Int) -> PoolStateMachine<PoolJob>.WorkerAction {
        state.withLock { $0.next(worker: worker) }
    }

    /// The worker's group has committed. If an idle worker may start the next group now, this
    /// thread starts it (`startNextGroup`).
    func groupCommitted(worker: Int) {
        if let idle = state.withLock({ $0.committed(worker: worker) }) { startNextGroup(on: idle) }
    }

    /// Starts the next group on an idle worker's connection from the calling thread — the worker
    /// whose group just committed — and then wakes that worker to read the results.
    ///
    /// Woken first, the idle worker would have had to take the jobs and send them itself: Postgres
    /// would only start on them after a thread wake-up, while the cores may idle between held
    /// groups. Sent from here, the wake-up overlaps Postgres running the group. The worker is
    /// counted busy since `committed` chose it, so this thread may use its connection until the
    /// hand-off, as a lent one (`runInline`).
    private func startNextGroup(on worker: Int) {
        guard let connection = slots[worker].connection, connection.isUsable else {
            wakeups[worker].signal()  // it reconnects first
            return
        }
        let jobs: [PoolJob]
        switch state.withLock({ $0.next(worker: worker) }) {
        case .wait: return  // the queue emptied meanwhile (deadlines): the worker is idle again
        case .exit:
            wakeups[worker].signal()
            return
        case .run(let taken): jobs = taken
        }
        heldGroupHandovers.add(1, ordering: .relaxed)
        let live = PoolJob.failingExpired(jobs)
        if live.count >= 2 {
            // Only batchable store calls are taken together: a group.
            if case .started(let group) = GroupCommit.start(live, on: connection) {
                let job = PoolJob(deadline: live[0].deadline, work: .finishGroup(group))
                state.withLock { $0.handOff(job, to: worker) }
            }
        } else if let job = live.first {
            state.withLock { $0.handOff(job, to: worker) }
        }
        wakeups[worker].signal()
    }

    func waitForWork(worker: Int) {
        wakeups[worker].wait()
    }

    func connectionOpened() {
        connectedCount.add(1, ordering: .relaxed)
        connectGeneration.add(1, ordering: .relaxed)
    }

    var currentConnectGeneration: UInt64 {
        connectGeneration.load(ordering: .relaxed)
    }

    func connectionClosed() {
        connectedCount.subtract(1, ordering: .relaxed)
    }

    func recordGroupCommit(calls: Int) {
        groupCommits.add(1, ordering: .relaxed)
        groupCommittedCalls.add(calls, ordering: .relaxed)
    }
}
