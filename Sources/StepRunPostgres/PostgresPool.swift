import Dispatch
import Foundation
import Logging
import StepRunCore
import Synchronization

/// A snapshot of the pool for metrics and health output.
public struct PoolStatistics: Sendable, Hashable {
    /// Configured number of connections.
    public var size: Int
    /// Workers running a call right now.
    public var busy: Int
    /// Workers waiting for a call.
    public var idle: Int
    /// Calls waiting for a free connection.
    public var waiting: Int
    /// Connections currently open to Postgres.
    public var connected: Int
    /// Transactions that committed a group of several write calls together.
    public var groupCommits: Int
    /// Write calls answered through those group commits.
    public var groupCommittedCalls: Int
}

/// A fixed set of libpq connections, each owned by its own thread.
///
/// libpq calls block, so they never run on a Swift concurrency or NIO thread: a caller's work is
/// queued here and its task suspends until a worker thread has run it. The queue is bounded
/// (`RESOURCE_EXHAUSTED` when full) and every call has a deadline (`DEADLINE_EXCEEDED` if it is
/// still waiting when the deadline passes). A worker whose connection is lost reconnects with
/// exponential backoff; until it succeeds its calls fail fast with `UNAVAILABLE`.
public final class PostgresPool: Sendable {
    public let configuration: PostgresConfiguration
    let logger: Logger
    private let state: Mutex<PoolStateMachine<PoolJob>>
    private let wakeups: [DispatchSemaphore]
    private let exited = DispatchGroup()
    private let nextJobID = Atomic<UInt64>(1)
    private let connectedCount = Atomic<Int>(0)
    /// Bumped by every successful connect, so workers waiting out a backoff learn the database is back.
    private let connectGeneration = Atomic<UInt64>(0)
    private let groupCommits = Atomic<Int>(0)
    private let groupCommittedCalls = Atomic<Int>(0)

    public init(configuration: PostgresConfiguration, logger: Logger) {
        precondition(configuration.poolSize >= 1, "pool size must be at least 1")
        self.configuration = configuration
        self.logger = logger
        self.state = Mutex(
            PoolStateMachine(
                workerCount: configuration.poolSize, maxWaitQueue: configuration.maxWaitQueue,
                maxBatch: configuration.maxGroupCommit))
        self.wakeups = (0..<configuration.poolSize).map { _ in DispatchSemaphore(value: 0) }
        for index in 0..<configuration.poolSize {
            exited.enter()
            let thread = Thread { [self] in
                var worker = PoolWorker(index: index, pool: self)
                worker.run()
                exited.leave()
            }
            thread.name = "steprun-pg-\(index)"
            thread.start()
        }
    }

    /// The current numbers of busy, idle and waiting.
    public var statistics: PoolStatistics {
        let (busy, idle, waiting) = state.withLock { ($0.busyCount, $0.idleCount, $0.waitingCount) }
        return PoolStatistics(
            size: configuration.poolSize, busy: busy, idle: idle, waiting: waiting,
            connected: connectedCount.load(ordering: .relaxed), groupCommits: groupCommits.load(ordering: .relaxed),
            groupCommittedCalls: groupCommittedCalls.load(ordering: .relaxed))
    }

    /// Runs `body` on a pooled connection's thread and returns its result.
    ///
    /// Throws `StepRunError`: `.resourceExhausted` when the wait queue is full, `.deadlineExceeded`
    /// when the deadline passes while waiting, `.cancelled` when the calling task is cancelled while
    /// waiting, `.unavailable` when the database cannot be reached or the pool is shut down.
    func withConnection<Result: Sendable>(
        deadline: ContinuousClock.Instant?,
        _ body: @escaping @Sendable (PGConnection) throws(StepRunError) -> Result
    ) async throws(StepRunError) -> Result {
        try await submitAndWait(deadline: deadline) { continuation, deadline, fail in
            PoolJob(
                deadline: deadline,
                work: .connection { connection in
                    do throws(StepRunError) {
                        continuation.resume(returning: try body(connection))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                },
                fail: fail)
        }
    }

    /// Runs one store request on a pooled connection. Write requests that find others queued behind
    /// them share one transaction with them (group commit); each caller is answered after COMMIT.
    func perform(_ request: StoreRequest, sql: StepRunSQL, deadline: ContinuousClock.Instant?) async throws(StepRunError) -> StoreResult {
        try await submitAndWait(deadline: deadline) { continuation, deadline, fail in
            PoolJob(
                deadline: deadline,
                work: .store(request, sql) { continuation.resume(with: $0.mapError { $0 as any Error }) },
                fail: fail)
        }
    }

    private func submitAndWait<Result: Sendable>(
        deadline: ContinuousClock.Instant?,
        makeJob: (CheckedContinuation<Result, any Error>, ContinuousClock.Instant, @escaping @Sendable (StepRunError) -> Void) -> PoolJob
    ) async throws(StepRunError) -> Result {
        let deadline = deadline ?? .now.advanced(by: configuration.defaultTimeout)
        guard deadline > .now else {
            throw .deadlineExceeded("the deadline passed before the call reached the database")
        }
        let id = nextJobID.add(1, ordering: .relaxed).newValue
        do {
            return try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Result, any Error>) in
                    submit(makeJob(continuation, deadline, { continuation.resume(throwing: $0) }), id: id)
                }
            } onCancel: {
                if let job = state.withLock({ $0.remove(id: id) }) {
                    job.fail(.cancelled("the call was cancelled while waiting for a database connection"))
                }
            }
        } catch let error as StepRunError {
            throw error
        } catch {
            throw .internal("unexpected error: \(error)")
        }
    }

    private func submit(_ job: PoolJob, id: UInt64) {
        switch state.withLock({ $0.submit(job, id: id) }) {
        case .wake(let worker):
            wakeups[worker].signal()
        case .enqueued:
            job.startTimer { [self] in
                if let expired = state.withLock({ $0.remove(id: id) }) {
                    expired.fail(.deadlineExceeded("no database connection became free before the deadline"))
                }
            }
        case .reject(.queueFull(let limit)):
            job.fail(.resourceExhausted("all database connections are busy and \(limit) calls are already waiting"))
        case .reject(.shuttingDown):
            job.fail(.unavailable("the database pool is shutting down"))
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
        logger.debug("database pool closed")
    }

    // MARK: Worker side

    fileprivate func nextAction(worker: Int) -> PoolStateMachine<PoolJob>.WorkerAction {
        state.withLock { $0.next(worker: worker) }
    }

    fileprivate func waitForWork(worker: Int) {
        wakeups[worker].wait()
    }

    fileprivate func connectionOpened() {
        connectedCount.add(1, ordering: .relaxed)
        connectGeneration.add(1, ordering: .relaxed)
    }

    fileprivate var currentConnectGeneration: UInt64 {
        connectGeneration.load(ordering: .relaxed)
    }

    fileprivate func connectionClosed() {
        connectedCount.subtract(1, ordering: .relaxed)
    }

    fileprivate func recordGroupCommit(calls: Int) {
        groupCommits.add(1, ordering: .relaxed)
        groupCommittedCalls.add(calls, ordering: .relaxed)
    }
}

/// One caller's work, owned by exactly one of: a worker, the expiry timer, cancellation, shutdown.
final class PoolJob: Sendable, PoolWork {
    enum Work: Sendable {
        /// Arbitrary work on the connection (migrations, health, tests).
        case connection(@Sendable (PGConnection) -> Void)
        /// A store request and where its outcome goes.
        case store(StoreRequest, StepRunSQL, @Sendable (Result<StoreResult, StepRunError>) -> Void)
    }

    let deadline: ContinuousClock.Instant
    let work: Work
    let fail: @Sendable (StepRunError) -> Void
    private let timer = Mutex<Task<Void, Never>?>(nil)

    init(deadline: ContinuousClock.Instant, work: Work, fail: @escaping @Sendable (StepRunError) -> Void) {
        self.deadline = deadline
        self.work = work
        self.fail = fail
    }

    /// Single-statement writes may share a transaction; a `transaction` call has its own BEGIN/COMMIT.
    var isBatchable: Bool {
        if case .store(let request, _, _) = work { return request.isTransactional }
        return false
    }

    /// Runs the job by itself (autocommit) and answers its caller.
    ///
    /// A single statement can still lose a deadlock or serialization race against a group holding
    /// locks; Postgres then applied nothing of it, so it is run again (a few times, briefly spaced).
    func runAlone(on connection: PGConnection) {
        switch work {
        case .connection(let body):
            body(connection)
        case .store(let request, let sql, let deliver):
            var outcome = Result { () throws(StepRunError) in try StoreOperations(connection: connection, sql: sql).perform(request) }
            var retries = 0
            while case .failure(.aborted) = outcome, (retries < 5), connection.isIdle, (deadline > ContinuousClock.now) {
                retries += 1
                usleep(UInt32(1000 * retries))
                outcome = Result { () throws(StepRunError) in try StoreOperations(connection: connection, sql: sql).perform(request) }
            }
            deliver(outcome)
        }
    }

    /// Orders a group's calls so that groups tend to take row locks in the same order.
    var lockOrderKey: String {
        guard case .store(let request, _, _) = work else { return "" }
        switch request {
        case .beginStep(let runID, let step, _, _), .scheduleStep(let runID, let step, _, _):
            return runID.uuidString + "/" + step
        case .scheduleSteps(let runID, _), .deletePendingSteps(let runID, _):
            return runID.uuidString
        case .completeStep(let id, _), .completeManualStep(let id, _, _), .failStep(let id, _),
            .persistPauseResume(let id, _, _), .persistApprovalResume(let id, _, _, _), .recordFailureRecovery(let id, _, _),
            .updateRecovery(let id, _), .beginAttempt(let id), .completeAttempt(let id), .failAttempt(let id, _),
            .recordAttempt(let id, _, _, _):
            return id.uuidString
        default:
            return ""
        }
    }

    /// Arms the deadline for a job that had to queue.
    func startTimer(onExpiry: @escaping @Sendable () -> Void) {
        let deadline = self.deadline
        let task = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            if !Task.isCancelled { onExpiry() }
        }
        timer.withLock { $0 = task }
    }

    /// Disarms the deadline once a worker owns the job.
    func cancelTimer() {
        timer.withLock { $0?.cancel() }
    }
}

/// The loop one pool thread runs: take a job, make sure the connection is alive, run it.
private struct PoolWorker {
    let index: Int
    let pool: PostgresPool
    private var connection: PGConnection?
    private var backoff: Duration
    private var nextAttempt: ContinuousClock.Instant = .now
    private var lastFailure = "not connected yet"
    /// The pool's connect generation when this worker last failed to connect.
    private var failedAtGeneration: UInt64 = 0

    init(index: Int, pool: PostgresPool) {
        self.index = index
        self.pool = pool
        self.backoff = pool.configuration.initialReconnectBackoff
    }

    mutating func run() {
        ensureConnection()
        while true {
            switch pool.nextAction(worker: index) {
            case .wait:
                pool.waitForWork(worker: index)
            case .exit:
                dropConnection()
                return
            case .run(let jobs):
                var live: [PoolJob] = []
                for job in jobs {
                    job.cancelTimer()
                    if job.deadline > .now {
                        live.append(job)
                    } else {
                        job.fail(.deadlineExceeded("no database connection became free before the deadline"))
                    }
                }
                guard !live.isEmpty else { continue }
                ensureConnection()
                guard let connection else {
                    for job in live { job.fail(.unavailable("database unreachable: \(lastFailure)")) }
                    continue
                }
                if live.count == 1 {
                    live[0].runAlone(on: connection)
                } else if GroupCommit.run(live, on: connection) {
                    pool.recordGroupCommit(calls: live.count)
                }
                if !connection.isUsable {
                    dropConnection()
                }
            }
        }
    }

    private mutating func ensureConnection() {
        if let connection, connection.isUsable { return }
        if connection != nil {
            pool.logger.warning("database connection lost; reconnecting", metadata: ["worker": "\(index)"])
            dropConnection()
        }
        // Wait out the backoff — unless another worker has connected since, i.e. the database is back.
        guard ContinuousClock.now >= nextAttempt || pool.currentConnectGeneration != failedAtGeneration else { return }
        do {
            connection = try PGConnection(parameters: pool.configuration.connectionParameters)
            pool.connectionOpened()
            if backoff > pool.configuration.initialReconnectBackoff {
                pool.logger.info("database connection re-established", metadata: ["worker": "\(index)"])
            }
            backoff = pool.configuration.initialReconnectBackoff
        } catch {
            lastFailure = error.message
            failedAtGeneration = pool.currentConnectGeneration
            nextAttempt = .now.advanced(by: backoff)
            pool.logger.warning(
                "cannot connect to the database",
                metadata: ["worker": "\(index)", "error": "\(error.message)", "retry_in": "\(backoff)"])
            backoff = min(backoff * 2, pool.configuration.maxReconnectBackoff)
        }
    }

    private mutating func dropConnection() {
        guard let connection else { return }
        connection.close()
        self.connection = nil
        pool.connectionClosed()
    }
}
