import Dispatch
import Logging
import Synchronization

/// Cancels a worker's running work once no caller waits for its result any more.
///
/// A call's deadline bounds its wait, but a statement blocked in Postgres (a table lock, a long
/// lock queue) would otherwise keep its connection until the lock goes or `statement_timeout`
/// ends it — callers told `DEADLINE_EXCEEDED` long ago, every connection stuck, health queued
/// behind them. So each worker registers what it runs (`begin`) with the **latest** deadline among
/// the callers it serves: a lone call's own, a group commit's latest, since one pipeline answers
/// them all and a caller still waiting must not lose its write to another's deadline. When that
/// passes, the watchdog sends libpq's cancel request; Postgres stops the statement with SQLSTATE
/// 57014 and rolls its transaction back, and the worker is free for the next call.
///
/// The cancel must hit that work and nothing after it. Postgres cancels whatever the backend runs
/// when the request arrives, so the watchdog sends it holding the worker's gate and only if the
/// slot still holds the same run (`generation`); the worker's `end` takes the same gate before it
/// can send anything else, and `PQcancel` returns only once the postmaster has signalled the
/// backend. A cancel that arrives after the work finished reaches an idle backend, which ignores
/// it. (The run itself sits under a second lock, never held across the network, so `running()` —
/// health — never waits for a cancel in progress.)
///
/// What a cancel does to a write: before COMMIT, nothing of it is stored. At COMMIT itself Postgres
/// does not interrupt the commit record; a cancel during the wait for a synchronous standby ends
/// only the wait — the transaction has committed locally. Either way its callers were already told
/// `DEADLINE_EXCEEDED`, which promises nothing about a write (docs/STORE.md).
final class StatementWatch: Sendable {
    private struct Run {
        var generation: UInt64
        var deadline: ContinuousClock.Instant
        var since: ContinuousClock.Instant
        var key: PGCancelKey?
        var cancelRequested = false
    }

    /// One per worker (a class: a `Mutex` cannot sit in an array).
    private final class Slot: Sendable {
        let run = Mutex<Run?>(nil)
        /// Held while a cancel request is sent, and by `end`.
        let gate = Mutex(())
    }

    private let slots: [Slot]
    private let generations = Atomic<UInt64>(0)
    private let cancels = Atomic<Int>(0)
    /// When the timer is armed to fire; nil when it is not.
    private let armedFor = Mutex<ContinuousClock.Instant?>(nil)
    private let logger: Logger
    /// Dispatch sources may be scheduled from any thread; the type is just not marked Sendable.
    private nonisolated(unsafe) let timer: any DispatchSourceTimer

    init(workers: Int, logger: Logger) {
        self.slots = (0..<workers).map { _ in Slot() }
        self.logger = logger
        self.timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "steprun.pool.statement-watch"))
        timer.setEventHandler { [weak self] in self?.fire() }
        timer.activate()
    }

    deinit {
        timer.cancel()
    }

    /// Statements cancelled because their callers' deadlines had passed.
    var cancelledCount: Int { cancels.load(ordering: .relaxed) }

    /// The worker starts work on `connection` that its callers wait for until `deadline`.
    func begin(worker: Int, until deadline: ContinuousClock.Instant, on connection: PGConnection) {
        let generation = generations.add(1, ordering: .relaxed).newValue
        slots[worker].run.withLock { $0 = Run(generation: generation, deadline: deadline, since: .now, key: connection.cancelKey) }
        armedFor.withLock { armed in
            guard armed.map({ deadline < $0 }) ?? true else { return }
            armed = deadline
            schedule(at: deadline)
        }
    }

    /// The worker is done with that work. Waits for a cancel being sent for it, so nothing the
    /// worker sends next can be cancelled by it.
    func end(worker: Int) {
        let slot = slots[worker]
        slot.gate.withLock { _ in slot.run.withLock { $0 = nil } }
    }

    /// How many workers are running something, and the longest any has been at it (health).
    func running(now: ContinuousClock.Instant = .now) -> (count: Int, longest: Duration) {
        var count = 0
        var longest = Duration.zero
        for slot in slots {
            if let since = slot.run.withLock({ $0?.since }) {
                count += 1
                longest = max(longest, now - since)
            }
        }
        return (count, longest)
    }

    private func schedule(at instant: ContinuousClock.Instant) {
        let delay = max(.zero, instant - .now)
        timer.schedule(deadline: .now() + .nanoseconds(Int(clamping: delay.inNanoseconds)), leeway: .milliseconds(5))
    }

    /// On the timer's queue: requests a cancel for every run past its deadline, and re-arms for
    /// the earliest deadline still ahead.
    private func fire() {
        let now = ContinuousClock.now
        var due: [(worker: Int, generation: UInt64)] = []
        var earliest: ContinuousClock.Instant?
        for (worker, slot) in slots.enumerated() {
            slot.run.withLock { run in
                guard var current = run, !current.cancelRequested else { return }
                if current.deadline <= now {
                    current.cancelRequested = true
                    run = current
                    due.append((worker, current.generation))
                } else if earliest.map({ current.deadline < $0 }) ?? true {
                    earliest = current.deadline
                }
            }
        }
        armedFor.withLock { armed in
            // A `begin` meanwhile may have armed it for an earlier instant: keep whichever is first.
            if let earliest, armed.map({ $0 <= now || earliest < $0 }) ?? true {
                armed = earliest
                schedule(at: earliest)
            } else if armed.map({ $0 <= now }) ?? false {
                armed = nil
            }
        }
        for (worker, generation) in due {
            // Each on its own thread: PQcancel blocks for a round trip to the server (longer if
            // the network is gone), and one slow cancel must not hold up the others.
            DispatchQueue.global().async { [self] in cancel(worker: worker, generation: generation) }
        }
    }

    private func cancel(worker: Int, generation: UInt64) {
        let slot = slots[worker]
        let outcome: String?? = slot.gate.withLock { _ in
            // Still the same work, so the request stops it and nothing later (see the type's comment).
            let key = slot.run.withLock { run in run?.generation == generation ? run?.key : nil }
            guard let key else { return nil }
            return .some(key.cancel())
        }
        switch outcome {
        case .none: break  // the work finished first
        case .some(.none):
            cancels.add(1, ordering: .relaxed)
            logger.notice("cancelled a database statement: every caller waiting for it had passed its deadline", metadata: ["worker": "\(worker)"])
        case .some(.some(let reason)):
            logger.warning("could not cancel a database statement past its callers' deadlines", metadata: ["worker": "\(worker)", "error": "\(reason)"])
        }
    }
}
