/// The pool's decisions, free of threads and sockets so they can be tested directly.
///
/// Jobs are handed to idle workers first, then queued up to `maxWaitQueue`. Every job leaves the
/// machine exactly once: handed to a worker, expired, cancelled, or failed at shutdown — which is
/// what guarantees each caller is answered exactly once.
/// What the pool state machine needs to know about a job.
protocol PoolWork {
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
    var deadline: ContinuousClock.Instant { get }
}

struct PoolStateMachine<Job: PoolWork> {
    /// What the submitter must do after `submit`.
    enum SubmitAction {
        /// Wake this idle worker; the job is in its mailbox.
        case wake(worker: Int)
        /// The job waits in the queue. If `armTimer` is set, the pool's one expiry timer must fire
        /// then (the job's deadline is the earliest the timer is not yet armed for). If `wake` is
        /// set, that idle worker must be woken: its `next` takes the queued jobs.
        case enqueued(armTimer: ContinuousClock.Instant?, wake: Int?)
        /// Refuse the job with this reason.
        case reject(Rejection)
    }

    enum Rejection: Equatable {
        case queueFull(limit: Int)
        case shuttingDown
    }

    /// What an idle worker does next.
    enum WorkerAction {
        /// Run these jobs; more than one only when all are batchable (group commit).
        case run([Job])
        /// Sleep until woken.
        case wait
        /// Close the connection and end the thread.
        case exit
    }

    private struct Entry {
        var id: UInt64
        var job: Job
    }

    let maxWaitQueue: Int
    /// Most jobs handed out together; 1 turns group commit off.
    let maxBatch: Int
    /// A group with at least this many small begin_step / complete_step calls
    /// (`PoolWork.smallSharedCalls`) holds the next group back until it has committed
    /// (`committed`), unless a full group (`maxBatch`) is already waiting. Calls arriving
    /// meanwhile join that next group instead of starting small groups of their own, and it runs
    /// while the previous group's callers are answered: under load Postgres runs fewer, larger
    /// groups (a quarter less CPU per call at 32 clients in docs/PERFORMANCE.md).
    /// Smaller groups hold nothing back, so at low concurrency groups run side by side.
    let holdThreshold: Int
    /// Workers running a group's statements (not idle, not past `committed`), with its number of
    /// small begin_step / complete_step calls.
    private var running: [Int: Int] = [:]
    private var queue: [Entry?] = []
    private var queueHead = 0
    private var queuedCount = 0
    private var idleWorkers: [Int] = []
    private var mailboxes: [Job?]
    private var busy: Set<Int> = []
    private(set) var isShuttingDown = false
    /// When the expiry timer is armed to fire; nil when it is not armed.
    private(set) var timerDeadline: ContinuousClock.Instant?

    init(workerCount: Int, maxWaitQueue: Int, maxBatch: Int = 1, holdThreshold: Int = .max) {
        self.maxWaitQueue = maxWaitQueue
        self.maxBatch = max(1, maxBatch)
        self.holdThreshold = max(2, holdThreshold)
        self.mailboxes = Array(repeating: nil, count: workerCount)
    }

    var waitingCount: Int { queuedCount }
    var idleCount: Int { idleWorkers.count }
    var busyCount: Int { busy.count }

    mutating func submit(_ job: Job, id: UInt64) -> SubmitAction {
        guard !isShuttingDown else { return .reject(.shuttingDown) }
        if queuedCount == 0, mayStartGroup, let worker = idleWorkers.popLast() {
            mailboxes[worker] = job
            busy.insert(worker)
            return .wake(worker: worker)
        }
        guard queuedCount < maxWaitQueue else { return .reject(.queueFull(limit: maxWaitQueue)) }
        queue.append(Entry(id: id, job: job))
        queuedCount += 1
        // Calls held back behind a large running group (`holdThreshold`) that now make a full
        // group: an idle worker takes them (its `next`) without waiting for that group.
        var wake: Int?
        if mayStartGroup, let worker = idleWorkers.popLast() {
            busy.insert(worker)
            wake = worker
        }
        if let armed = timerDeadline, armed <= job.deadline {
            return .enqueued(armTimer: nil, wake: wake)
        }
        timerDeadline = job.deadline
        return .enqueued(armTimer: job.deadline, wake: wake)
    }

    /// Called when the expiry timer fires: removes the queued jobs whose deadline has passed and
    /// says when the timer must fire next (nil: nothing is queued, leave it disarmed).
    ///
    /// One timer serves the whole queue, so a waiting call costs no timer of its own.
    mutating func expire(now: ContinuousClock.Instant) -> (expired: [Job], rearm: ContinuousClock.Instant?) {
        var expired: [Job] = []
        var earliest: ContinuousClock.Instant?
        for index in queueHead..<queue.count {
            guard let entry = queue[index] else { continue }
            if entry.job.deadline <= now {
                expired.append(entry.job)
                queue[index] = nil
                queuedCount -= 1
            } else if earliest.map({ entry.job.deadline < $0 }) ?? true {
                earliest = entry.job.deadline
            }
        }
        compact()
        timerDeadline = earliest
        return (expired, earliest)
    }

    /// Called by a worker that has finished its job (or just started): the next jobs, or wait, or exit.
    ///
    /// A batchable job takes the batchable jobs queued right behind it along (up to `maxBatch`), so
    /// that under load one transaction — one commit — serves many callers. Nothing waits for a batch
    /// to fill: alone, a job runs by itself at once.
    mutating func next(worker: Int) -> WorkerAction {
        running[worker] = nil
        var first: Job?
        if let job = mailboxes[worker] {
            mailboxes[worker] = nil
            first = job
        } else if mayStartGroup {
            first = dequeue()
        }
        if let first {
            busy.insert(worker)
            var batch = [first]
            while first.isBatchable, batch.count < maxBatch, let job = dequeue(where: \.isBatchable) {
                batch.append(job)
            }
            running[worker] = batch.reduce(0) { $0 + $1.smallSharedCalls }
            return .run(batch)
        }
        busy.remove(worker)
        if isShuttingDown { return .exit }
        if !idleWorkers.contains(worker) { idleWorkers.append(worker) }
        return .wait
    }

    /// The worker's group has run its COMMIT — committed, or failed and about to run its calls
    /// one at a time — and its callers are answered next: it holds nothing back any more. Returns
    /// an idle worker, now counted busy, when calls are queued: the caller starts the next group
    /// on it (`PostgresPool.startNextGroup`) while this one finishes.
    mutating func committed(worker: Int) -> Int? {
        guard running.removeValue(forKey: worker) != nil, queuedCount > 0, !isShuttingDown, mayStartGroup,
            let idle = idleWorkers.popLast()
        else { return nil }
        busy.insert(idle)
        return idle
    }

    /// May a worker start another group now? Yes unless a running group has enough such calls to hold
    /// the queue back (`holdThreshold`) and less than a full group is waiting.
    private var mayStartGroup: Bool {
        queuedCount >= maxBatch || running.values.allSatisfy { $0 < holdThreshold }
    }

    /// Lends an idle worker's connection to the caller's own thread, but only when the pool is
    /// quiet: no worker busy and nothing queued. The worker stays asleep and counts as busy until
    /// `giveBack(worker:)` or `handOff(_:to:)`.
    mutating func lendIdleWorker() -> Int? {
        guard !isShuttingDown, busy.isEmpty, queuedCount == 0, let worker = idleWorkers.popLast() else { return nil }
        busy.insert(worker)
        return worker
    }

    /// The borrower is done with the worker's connection. True when the worker must be woken: work
    /// was queued meanwhile (its `next` takes it) or the pool is shutting down (its `next` says exit).
    mutating func giveBack(worker: Int) -> Bool {
        if queuedCount > 0 || isShuttingDown { return true }
        busy.remove(worker)
        idleWorkers.append(worker)
        return false
    }

    /// The borrower leaves unfinished work to the lent worker, which must then be woken: the job is
    /// in its mailbox, ahead of anything queued.
    mutating func handOff(_ job: Job, to worker: Int) {
        mailboxes[worker] = job
    }

    /// Removes a job still waiting in the queue (deadline passed or caller cancelled).
    mutating func remove(id: UInt64) -> Job? {
        guard queuedCount > 0 else { return nil }
        for index in queueHead..<queue.count {
            if let entry = queue[index], entry.id == id {
                queue[index] = nil
                queuedCount -= 1
                compact()
                return entry.job
            }
        }
        return nil
    }

    /// Stops taking jobs; returns the queued jobs to fail and the idle workers to wake so they exit.
    mutating func shutdown() -> (queued: [Job], wake: [Int]) {
        isShuttingDown = true
        var jobs: [Job] = []
        while let job = dequeue() { jobs.append(job) }
        let wake = idleWorkers
        idleWorkers.removeAll()
        return (jobs, wake)
    }

    private mutating func dequeue(where condition: ((Job) -> Bool)? = nil) -> Job? {
        while queueHead < queue.count {
            let entry = queue[queueHead]
            if let entry, let condition, !condition(entry.job) {
                return nil  // keep arrival order: stop at the first job that cannot join
            }
            queue[queueHead] = nil
            queueHead += 1
            if let entry {
                queuedCount -= 1
                compact()
                return entry.job
            }
        }
        compact()
        return nil
    }

    private mutating func compact() {
        if queuedCount == 0 {
            queue.removeAll(keepingCapacity: true)
            queueHead = 0
        } else if queueHead > 64 && queueHead * 2 > queue.count {
            queue.removeFirst(queueHead)
            queueHead = 0
        }
    }
}
