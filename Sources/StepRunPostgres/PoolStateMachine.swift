/// What the pool state machine needs to know about a job.
protocol PoolWork {
    associatedtype Instant: InstantProtocol
    /// May it share a transaction with its neighbours?
    var isBatchable: Bool { get }
    /// How many calls in it are small begin_step / complete_step calls
    /// (`StoreOperations.isSmallStepWrite`): 1 or 0 for one call, more for a group started
    /// elsewhere. Only those hold the next group back. They share one multi-row statement per kind,
    /// and what Postgres spends on them is mostly that statement's fixed part, so gathering more of
    /// them into the next group saves work; other calls run as statements of their own, and calls
    /// with large payloads cost mostly per byte — holding them back only leaves a core idle.
    var smallSharedCalls: Int { get }
    /// When its caller stops waiting; a job still queued then is expired.
    var deadline: Instant { get }
}

/// The pool's decisions, free of threads and sockets so they can be tested directly on a manual
/// clock: which worker runs which jobs (group formation and the hold), the bounded wait queue and
/// its one expiry timer, lending an idle worker's connection, each worker's connection lifecycle
/// (`ConnectionLifecycle`: connect, backoff, "the database is back"), and shutdown.
///
/// Every decision is one call made under the pool's one lock; it returns `PoolActions` that the
/// pool carries out after the lock is released (`PostgresPool.execute`), or a `WorkerAction` the
/// worker thread carries out. Every job leaves the machine exactly once: handed to a worker,
/// expired, cancelled, or failed at shutdown — which is what guarantees each caller is answered
/// exactly once.
struct PoolStateMachine<Job: PoolWork, Clock: PoolClock> where Job.Instant == Clock.Instant {
    typealias Instant = Clock.Instant
    typealias Actions = PoolActions<Job, Instant>

    /// What an idle worker does next.
    enum WorkerAction {
        /// Run these jobs; more than one only when all are batchable (group commit).
        case run([Job])
        /// Sleep until woken.
        case wait
        /// Close the connection and end the thread.
        case exit
    }

    let clock: Clock
    let maxWaitQueue: Int
    /// Most jobs handed out together (`groupCommitMax`); 1 turns group commit off.
    let groupCommitMax: Int
    /// A group with at least this many small begin_step / complete_step calls
    /// (`PoolWork.smallSharedCalls`) holds the next group back until it has committed
    /// (`committed`), unless a full group (`groupCommitMax`) is already waiting. Calls arriving
    /// meanwhile join that next group instead of starting small groups of their own, and it runs
    /// while the previous group's callers are answered: under load Postgres runs fewer, larger
    /// groups (a quarter less CPU per call at 32 clients in docs/PERFORMANCE.md).
    /// Smaller groups hold nothing back, so at low concurrency groups run side by side.
    let holdThreshold: Int
    /// Workers running a group's statements (not idle, not past `committed`), with its number of
    /// small begin_step / complete_step calls.
    private var running: [Int: Int] = [:]
    private var queue: PoolQueue<Job>
    private var idleWorkers: [Int] = []
    private var mailboxes: [Job?]
    private var busy: Set<Int> = []
    private(set) var connections: ConnectionLifecycle<Instant>
    private(set) var isShuttingDown = false
    /// When the expiry timer is armed to fire; nil when it is not armed.
    private(set) var timerDeadline: Instant?

    init(
        workerCount: Int, maxWaitQueue: Int, groupCommitMax: Int = 1, holdThreshold: Int = .max, clock: Clock,
        initialBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(1)
    ) {
        self.clock = clock
        self.maxWaitQueue = maxWaitQueue
        self.groupCommitMax = max(1, groupCommitMax)
        self.holdThreshold = max(2, holdThreshold)
        self.mailboxes = Array(repeating: nil, count: workerCount)
        self.queue = PoolQueue(capacity: maxWaitQueue)
        self.connections = ConnectionLifecycle(workerCount: workerCount, initialBackoff: initialBackoff, maxBackoff: maxBackoff)
    }

    var waitingCount: Int { queue.count }
    var idleCount: Int { idleWorkers.count }
    var busyCount: Int { busy.count }

    // MARK: Jobs

    /// A caller's job arrives: to an idle worker's mailbox, into the queue, or refused.
    mutating func submit(_ job: Job, id: UInt64) -> Actions {
        guard !isShuttingDown else { return .fail(job, .shuttingDown) }
        if queue.isEmpty, mayStartGroup, let worker = idleWorkers.popLast() {
            mailboxes[worker] = job
            busy.insert(worker)
            return Actions(wake: worker)
        }
        guard queue.count < maxWaitQueue else { return .fail(job, .queueFull(limit: maxWaitQueue)) }
        queue.append(job, id: id)
        var actions = Actions()
        // Calls held back behind a large running group (`holdThreshold`) that now make a full
        // group: an idle worker takes them (its `next`) without waiting for that group.
        if mayStartGroup, let worker = idleWorkers.popLast() {
            busy.insert(worker)
            actions.wake = worker
        }
        if timerDeadline.map({ job.deadline < $0 }) ?? true {
            timerDeadline = job.deadline
            actions.armTimer = job.deadline
        }
        return actions
    }

    /// The expiry timer fired: fails the queued jobs whose deadline has passed and re-arms the
    /// timer for the earliest deadline still queued (disarmed when nothing is).
    ///
    /// One timer serves the whole queue, so a waiting call costs no timer of its own.
    mutating func expire() -> Actions {
        let now = clock.now
        let expired = queue.removeAll { $0.deadline <= now }
        var earliest: Instant?
        queue.forEach { job in
            if earliest.map({ job.deadline < $0 }) ?? true { earliest = job.deadline }
        }
        timerDeadline = earliest
        return Actions(armTimer: earliest, fail: expired, failure: .expired)
    }

    /// Removes a job still waiting in the queue (its caller cancelled): O(1), see `PoolQueue`.
    mutating func remove(id: UInt64) -> Actions {
        guard let job = queue.remove(id: id) else { return Actions() }
        return .fail(job, .cancelled)
    }

    /// Called by a worker that has finished its job (or just started): the next jobs, or wait, or exit.
    ///
    /// A batchable job takes the batchable jobs queued right behind it along (up to
    /// `groupCommitMax`), so that under load one transaction — one commit — serves many callers.
    /// Nothing waits for a group to fill: alone, a job runs by itself at once.
    mutating func next(worker: Int) -> WorkerAction {
        running[worker] = nil
        var first: Job?
        if let job = mailboxes[worker] {
            mailboxes[worker] = nil
            first = job
        } else if mayStartGroup {
            first = queue.popFirst()
        }
        if let first {
            busy.insert(worker)
            var group = [first]
            while first.isBatchable, group.count < groupCommitMax, let job = queue.popFirst(where: \.isBatchable) {
                group.append(job)
            }
            running[worker] = group.reduce(0) { $0 + $1.smallSharedCalls }
            return .run(group)
        }
        busy.remove(worker)
        if isShuttingDown { return .exit }
        if !idleWorkers.contains(worker) { idleWorkers.append(worker) }
        return .wait
    }

    /// The worker's group has run its COMMIT — committed, or failed and about to run its calls
    /// one at a time — and its callers are answered next: it holds nothing back any more. When
    /// calls are queued and a worker is idle, that worker is counted busy and the actions say to
    /// start the next group on its connection from the calling thread (`HeldGroupHandover`).
    mutating func committed(worker: Int) -> Actions {
        guard running.removeValue(forKey: worker) != nil, !queue.isEmpty, !isShuttingDown, mayStartGroup,
            let idle = idleWorkers.popLast()
        else { return Actions() }
        busy.insert(idle)
        return Actions(startNextGroup: idle)
    }

    /// May a worker start another group now? Yes unless a running group has enough such calls to hold
    /// the queue back (`holdThreshold`) and less than a full group is waiting.
    private var mayStartGroup: Bool {
        queue.count >= groupCommitMax || running.values.allSatisfy { $0 < holdThreshold }
    }

    // MARK: Lending a worker's connection

    /// Lends an idle worker's connection to the caller's own thread (an inline call), but only
    /// when the pool is quiet: no worker busy and nothing queued. The worker stays asleep and
    /// counts as busy until `giveBack(worker:)` or `handOver(_:to:)`.
    mutating func lend() -> Int? {
        guard !isShuttingDown, busy.isEmpty, queue.isEmpty, let worker = idleWorkers.popLast() else { return nil }
        busy.insert(worker)
        return worker
    }

    /// The borrower is done with the worker's connection. The worker is woken when work was queued
    /// meanwhile (its `next` takes it) or the pool is shutting down (its `next` says exit).
    mutating func giveBack(worker: Int) -> Actions {
        if !queue.isEmpty || isShuttingDown { return Actions(wake: worker) }
        busy.remove(worker)
        idleWorkers.append(worker)
        return Actions()
    }

    /// The borrower leaves unfinished work to the lent worker — a statement in flight on its
    /// connection — which is woken to finish it: the job is in its mailbox, ahead of anything queued.
    mutating func handOver(_ job: Job, to worker: Int) -> Actions {
        mailboxes[worker] = job
        return Actions(wake: worker)
    }

    // MARK: Connections

    /// The worker has no usable connection: may it open one now? (`ConnectionLifecycle`)
    func connectDecision(worker: Int) -> ConnectionLifecycle<Instant>.ConnectDecision {
        connections.decide(worker: worker, now: clock.now)
    }

    /// The worker connected; true when that ends a run of failures (log the reconnect).
    mutating func connected(worker: Int) -> Bool {
        connections.connected(worker: worker)
    }

    /// The worker's connection attempt failed; returns the backoff before its next attempt.
    mutating func connectFailed(worker: Int, reason: String) -> Duration {
        connections.connectFailed(worker: worker, reason: reason, now: clock.now)
    }

    /// The worker closed its connection (lost, or exiting).
    mutating func connectionClosed(worker: Int) {
        connections.closed(worker: worker)
    }

    // MARK: Shutdown

    /// Stops taking jobs; the queued jobs are failed and the idle workers woken so they exit.
    mutating func shutdown() -> Actions {
        isShuttingDown = true
        var jobs: [Job] = []
        while let job = queue.popFirst() { jobs.append(job) }
        let wake = idleWorkers
        idleWorkers.removeAll()
        return Actions(wakeAll: wake, fail: jobs, failure: .shuttingDown)
    }
}

/// What the pool must do after a decision of `PoolStateMachine`, carried out in one place
/// (`PostgresPool.execute`) once the state lock is released — except `armTimer`, which is set
/// under the lock so the timer always ends up armed for the latest decision. Empty arrays cost
/// no allocation, so the common decisions (wake one worker, or nothing) stay free.
struct PoolActions<Job, Instant> {
    /// Why `fail` jobs are answered with an error.
    enum Failure: Equatable {
        case none
        case queueFull(limit: Int)
        case shuttingDown
        case expired
        case cancelled
    }

    /// Signal this worker's wake-up.
    var wake: Int?
    /// Signal these workers' wake-ups (shutdown).
    var wakeAll: [Int] = []
    /// (Re)arm the expiry timer for this instant.
    var armTimer: Instant?
    /// Start the next group on this worker's connection from the calling thread, then wake it
    /// (`HeldGroupHandover`).
    var startNextGroup: Int?
    /// Answer these jobs with `failure`.
    var fail: [Job] = []
    var failure: Failure = .none

    init(wake: Int? = nil, wakeAll: [Int] = [], armTimer: Instant? = nil, startNextGroup: Int? = nil, fail: [Job] = [], failure: Failure = .none) {
        self.wake = wake
        self.wakeAll = wakeAll
        self.armTimer = armTimer
        self.startNextGroup = startNextGroup
        self.fail = fail
        self.failure = failure
    }

    static func fail(_ job: Job, _ failure: Failure) -> Self {
        Self(fail: [job], failure: failure)
    }
}
