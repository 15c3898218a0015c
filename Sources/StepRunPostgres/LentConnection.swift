import StepRunCore

/// A worker's connection lent to another thread: the only way a thread other than the worker's
/// own touches it. The state machine counts the worker busy (asleep, its connection lent) from
/// `PostgresPool.lend` until the value is consumed by exactly one of `PostgresPool.giveBack`
/// (the borrower is done: the worker is idle again, or woken if work arrived) or
/// `PostgresPool.handOver` (the borrower leaves work in flight on it for the worker to finish).
///
/// It is `~Copyable`, so a second owner does not type-check; a value dropped without either is a
/// bug, caught by the `deinit` (the worker would stay busy for ever).
///
/// It holds the connection unretained: the worker's `ConnectionSlot` keeps it alive, and only the
/// holder of this value may replace the slot's connection, which it never does.
struct LentConnection: ~Copyable {
    let worker: Int
    private let unretained: Unmanaged<PGConnection>

    fileprivate init(worker: Int, connection: PGConnection) {
        self.worker = worker
        self.unretained = .passUnretained(connection)
    }

    var connection: PGConnection { unretained.takeUnretainedValue() }

    /// Ends the loan; only `giveBack` and `handOver` call it.
    fileprivate consuming func end() -> Int {
        let worker = self.worker
        discard self
        return worker
    }

    deinit {
        preconditionFailure("a lent database connection was neither given back nor handed over (worker \(worker))")
    }
}

extension PostgresPool {
    /// Lends an idle worker's usable connection to the calling thread when the pool is quiet
    /// (`PoolStateMachine.lend`), nil otherwise.
    func lend() -> LentConnection? {
        guard let worker = state.withLock({ $0.lend() }) else { return nil }
        guard let connection = slots[worker].connection, connection.isUsable else {
            decide { $0.giveBack(worker: worker) }
            return nil
        }
        return LentConnection(worker: worker, connection: connection)
    }

    /// The borrower is done with the connection; nothing of its work is left on it.
    func giveBack(_ lent: consuming LentConnection) {
        let worker = lent.end()
        decide { $0.giveBack(worker: worker) }
    }

    /// The borrower leaves `job` — work in flight on the connection — to the worker, and wakes it;
    /// with no job, the worker is just woken (its `next` decides what it does).
    func handOver(_ lent: consuming LentConnection, _ job: PoolJob?) {
        let worker = lent.end()
        if let job {
            decide { $0.handOver(job, to: worker) }
        } else {
            wakeups[worker].signal()
        }
    }

    /// Runs a call inline (`InlineCall`) if an idle worker's connection can be lent; false when
    /// nothing was done and the call must take the pool path.
    func runInline(
        _ request: StoreRequest, sql: StepRunSQL, deadline: ContinuousClock.Instant?, wait: Duration,
        completion: @escaping StoreCompletion
    ) -> Bool {
        guard let lent = lend() else { return false }
        let call = InlineCall(request: request, sql: sql, deadline: effectiveDeadline(deadline), wait: wait, completion: completion)
        switch call.run(on: lent) {
        case .declined:
            giveBack(lent)
            return false
        case .answered(let outcome):
            giveBack(lent)
            counters.countInline(isRead: request.isReadOnly, handedOver: false)
            completion(outcome)
            return true
        case .unfinished(let started):
            counters.countInline(isRead: request.isReadOnly, handedOver: true)
            handOver(lent, PoolJob(deadline: started.deadline, work: .finishInline(started)))
            return true
        }
    }

    /// Carries out `PoolActions.startNextGroup`: the state machine chose this idle worker, now
    /// counted busy, for the next group, and this thread — whose group just committed — starts it
    /// on the worker's connection (`HeldGroupHandover`).
    func startNextGroup(on worker: Int) {
        guard let connection = slots[worker].connection, connection.isUsable else {
            wakeups[worker].signal()  // it reconnects first
            return
        }
        switch state.withLock({ $0.next(worker: worker) }) {
        case .wait: return  // the queue emptied meanwhile (deadlines): the worker is idle again
        case .exit:
            wakeups[worker].signal()
        case .run(let jobs):
            // The worker, asleep, is busy with `jobs`: its connection is this thread's until the handover.
            let lent = LentConnection(worker: worker, connection: connection)
            counters.countHeldGroupHandover()
            let job = HeldGroupHandover.start(jobs, on: lent)
            handOver(lent, job)
        }
    }
}
