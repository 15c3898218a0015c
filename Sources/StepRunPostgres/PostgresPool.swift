import Dispatch
import Foundation
import Logging
import ServiceLifecycle
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
///
/// The layout: every decision is made by `PoolStateMachine` under one lock (`decide`), which
/// returns `PoolActions` carried out here (`execute`). A request runs one of four ways, each a
/// type of its own: `AloneCall`, `GroupCommit`, `InlineCall` (over a `LentConnection`) and
/// `HeldGroupHandover`. The worker threads (`PoolWorker`) start when the service runs (`run`),
/// or at the first call if that comes first (migrations run before the daemon's services do).
public final class PostgresPool: Sendable, Service {
    public let configuration: PostgresConfiguration
    let logger: Logger
    let state: Mutex<PoolStateMachine<PoolJob, ContinuousClock>>
    let wakeups: [DispatchSemaphore]
    /// Each worker's connection; used by the worker, or by the holder of a `LentConnection` for it.
    let slots: [ConnectionSlot]
    let counters = PoolCounters()
    private let exited = DispatchGroup()
    /// True once the threads are started: the hot path's check, without taking `lifecycle`.
    private let started = Atomic<Bool>(false)
    /// Starting the threads and shutting down exclude each other, so `shutdown` never returns
    /// while threads are still being started, and a pool shut down before it ever ran starts none.
    private let lifecycle = Mutex(Lifecycle.notStarted)
    private enum Lifecycle { case notStarted, started, shutDown }
    private let nextJobID = Atomic<UInt64>(1)
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
                groupCommitMax: configuration.groupCommitMax,
                holdThreshold: configuration.groupCommitHold > 0 ? configuration.groupCommitHold : .max, clock: ContinuousClock(),
                initialBackoff: configuration.initialReconnectBackoff, maxBackoff: configuration.maxReconnectBackoff))
        self.wakeups = (0..<configuration.poolSize).map { _ in DispatchSemaphore(value: 0) }
        self.slots = (0..<configuration.poolSize).map { _ in ConnectionSlot() }
        self.watch = StatementWatch(workers: configuration.poolSize, logger: logger)
        self.expiryTimer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "steprun.pool.expiry"))
        expiryTimer.setEventHandler { [weak self] in self?.decide { $0.expire() } }
        expiryTimer.activate()
    }

    /// The service: starts the worker threads (unless a call already has), and once a graceful
    /// shutdown is requested shuts the pool down (`shutdown`) and returns. In the daemon's service
    /// group it comes before the server, so it closes after the server has drained.
    public func run() async throws {
        startWorkers()
        try? await gracefulShutdown()
        await shutdown()
    }

    /// Starts the worker threads, once.
    func startWorkers() {
        guard !started.load(ordering: .acquiring) else { return }
        lifecycle.withLock { lifecycle in
            guard case .notStarted = lifecycle else { return }
            lifecycle = .started
            spawnWorkers()
            started.store(true, ordering: .releasing)
        }
    }

    /// Every `exited.enter()` happens before the lifecycle lock is released (`startWorkers`).
    private func spawnWorkers() {
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
        let (busy, idle, waiting, connected) = state.withLock { ($0.busyCount, $0.idleCount, $0.waitingCount, $0.connections.connectedCount) }
        return counters.snapshot(
            size: configuration.poolSize, busy: busy, idle: idle, waiting: waiting, connected: connected,
            cancelledStatements: watch.cancelledCount)
    }

    // MARK: Decisions and their actions

    /// Makes one decision under the state lock and carries out its actions: the one place the
    /// pool acts on the state machine's behalf. The expiry timer is armed under the lock, so it
    /// always ends up armed for the latest decision; everything else happens after it is released.
    @inline(__always)
    func decide(_ decision: (inout PoolStateMachine<PoolJob, ContinuousClock>) -> PoolActions<PoolJob, ContinuousClock.Instant>) {
        let actions = state.withLock { machine in
            let actions = decision(&machine)
            if let instant = actions.armTimer { armExpiryTimer(at: instant) }
            return actions
        }
        execute(actions)
    }

    private func execute(_ actions: PoolActions<PoolJob, ContinuousClock.Instant>) {
        if !actions.fail.isEmpty {
            let error = Self.error(for: actions.failure)
            for job in actions.fail { job.fail(error) }
        }
        if let worker = actions.wake { wakeups[worker].signal() }
        for worker in actions.wakeAll { wakeups[worker].signal() }
        if let worker = actions.startNextGroup { startNextGroup(on: worker) }
    }

    private static func error(for failure: PoolActions<PoolJob, ContinuousClock.Instant>.Failure) -> StepRunError {
        switch failure {
        case .queueFull(let limit): .resourceExhausted("all database connections are busy and \(limit) calls are already waiting")
        case .shuttingDown: .unavailable("the database pool is shutting down")
        case .expired: .deadlineExceeded("no database connection became free before the deadline")
        case .cancelled: .cancelled("the call was cancelled while waiting for a database connection")
        case .none: .internal("a pool decision failed a call without a reason")
        }
    }

    /// Called with the state lock held, so the timer always ends up armed for the latest decision.
    private func armExpiryTimer(at instant: ContinuousClock.Instant) {
        let delay = max(.zero, instant - .now)
        expiryTimer.schedule(deadline: .now() + .nanoseconds(Int(clamping: delay.inNanoseconds)), leeway: .milliseconds(1))
    }

    // MARK: Calls

    /// Starts one store request without waiting for it: `completion` is called exactly once, on a
    /// pool thread (or on the caller's thread if the call is refused at once or runs inline).
    /// Returns the id that `cancel(_:)` takes.
    ///
    /// With `inline`, a read, or a begin_step / complete_step call, that finds the pool quiet
    /// runs on the calling thread instead, blocking it at most `inlineReadWait` / `inlineWriteWait`
    /// (`InlineCall`).
    @discardableResult
    func start(
        _ request: StoreRequest, sql: StepRunSQL, deadline: ContinuousClock.Instant?, inline: Bool = false,
        completion: @escaping StoreCompletion
    ) -> UInt64 {
        if inline, let wait = inlineWait(for: request), runInline(request, sql: sql, deadline: deadline, wait: wait, completion: completion) {
            return 0  // answered or handed over to a worker: nothing left to cancel
        }
        return submit(deadline: deadline) { deadline in
            PoolJob(deadline: deadline, work: .store(GroupCommit.Call(request: request, sql: sql, deadline: deadline, completion: completion)))
        }
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

    /// Fails a call that is still waiting for a connection with `CANCELLED` (O(1): `PoolQueue`); a
    /// call a worker has already taken runs to its end (a write either commits or does not).
    func cancel(_ id: UInt64) {
        guard id != 0 else { return }  // ran inline: nothing waits in the queue
        decide { $0.remove(id: id) }
    }

    /// A call's deadline, or the configured default for calls that bring none.
    func effectiveDeadline(_ deadline: ContinuousClock.Instant?) -> ContinuousClock.Instant {
        deadline ?? .now.advanced(by: configuration.defaultTimeout)
    }

    func submit(deadline: ContinuousClock.Instant?, makeJob: (ContinuousClock.Instant) -> PoolJob) -> UInt64 {
        if !started.load(ordering: .relaxed) { startWorkers() }
        let deadline = effectiveDeadline(deadline)
        let id = nextJobID.add(1, ordering: .relaxed).newValue
        let job = makeJob(deadline)
        guard deadline > .now else {
            job.fail(.deadlineExceeded("the deadline passed before the call reached the database"))
            return id
        }
        decide { $0.submit(job, id: id) }
        return id
    }

    /// Fails waiting calls, lets running calls finish, closes every connection and joins the threads.
    public func shutdown() async {
        lifecycle.withLock { lifecycle in
            if case .notStarted = lifecycle { lifecycle = .shutDown }
        }
        decide { $0.shutdown() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            exited.notify(queue: .global()) { continuation.resume() }
        }
        expiryTimer.cancel()
        logger.debug("database pool closed")
    }

    // MARK: Worker side

    func nextAction(worker: Int) -> PoolStateMachine<PoolJob, ContinuousClock>.WorkerAction {
        state.withLock { $0.next(worker: worker) }
    }

    /// The worker's group has committed: the state machine may have this thread start the next
    /// group (`startNextGroup`).
    func groupCommitted(worker: Int) {
        decide { $0.committed(worker: worker) }
    }

    func waitForWork(worker: Int) {
        wakeups[worker].wait()
    }
}
