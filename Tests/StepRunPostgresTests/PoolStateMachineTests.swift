@testable import StepRunPostgres
import Testing

/// A job for the state machine: a name, and whether it may share a transaction.
struct TestJob: PoolWork, Equatable, ExpressibleByStringLiteral, CustomStringConvertible {
    var name: String
    var isBatchable: Bool
    var smallSharedCalls: Int
    var deadline: ContinuousClock.Instant

    init(_ name: String, batchable: Bool, deadline: ContinuousClock.Instant = .now.advanced(by: .seconds(3600))) {
        self.name = name
        self.isBatchable = batchable
        self.smallSharedCalls = batchable ? 1 : 0
        self.deadline = deadline
    }

    init(stringLiteral name: String) {
        self.init(name, batchable: false)
    }

    var description: String { name }
}

@Suite("Pool state machine")
struct PoolStateMachineTests {
    private func names(_ action: PoolStateMachine<TestJob>.WorkerAction) -> [String]? {
        if case .run(let jobs) = action { return jobs.map(\.name) }
        return nil
    }

    @Test("a job goes straight to an idle worker")
    func idleWorkerTakesJob() {
        var machine = PoolStateMachine<TestJob>(workerCount: 2, maxWaitQueue: 1)
        guard case .wait = machine.next(worker: 0) else { Issue.record("worker 0 should wait"); return }
        guard case .wake(worker: 0) = machine.submit("a", id: 1) else { Issue.record("expected wake 0"); return }
        #expect(names(machine.next(worker: 0)) == ["a"])
        #expect(machine.busyCount == 1)
    }

    @Test("with every worker busy jobs queue up to the limit, then are rejected")
    func queueIsBounded() {
        var machine = PoolStateMachine<TestJob>(workerCount: 1, maxWaitQueue: 2)
        guard case .enqueued = machine.submit("a", id: 1), case .enqueued = machine.submit("b", id: 2) else {
            Issue.record("expected two enqueued")
            return
        }
        guard case .reject(.queueFull(limit: 2)) = machine.submit("c", id: 3) else { Issue.record("expected queueFull"); return }
        #expect(machine.waitingCount == 2)
    }

    @Test("queued jobs run in arrival order; removed ones never run")
    func fifoAndRemoval() {
        var machine = PoolStateMachine<TestJob>(workerCount: 1, maxWaitQueue: 10)
        for (id, job) in ["a", "b", "c"].enumerated() { _ = machine.submit(TestJob(stringLiteral: job), id: UInt64(id)) }
        #expect(machine.remove(id: 1)?.name == "b")
        #expect(machine.remove(id: 1) == nil)
        #expect(names(machine.next(worker: 0)) == ["a"])
        #expect(names(machine.next(worker: 0)) == ["c"])
        guard case .wait = machine.next(worker: 0) else { Issue.record("expected wait"); return }
    }

    @Test("shutdown hands back queued jobs, wakes idle workers, refuses new jobs and lets workers exit")
    func shutdown() {
        var machine = PoolStateMachine<TestJob>(workerCount: 2, maxWaitQueue: 10)
        _ = machine.next(worker: 1)
        guard case .wake(worker: 1) = machine.submit("running", id: 1) else { Issue.record("expected wake"); return }
        _ = machine.next(worker: 1)
        _ = machine.submit("queued", id: 2)
        let (queued, wake) = machine.shutdown()
        #expect(queued.map(\.name) == ["queued"])
        #expect(wake.isEmpty)
        guard case .reject(.shuttingDown) = machine.submit("late", id: 3) else { Issue.record("expected shuttingDown"); return }
        guard case .exit = machine.next(worker: 0), case .exit = machine.next(worker: 1) else { Issue.record("expected exit"); return }
    }

    @Test("a job handed to a worker's mailbox is not lost to shutdown")
    func mailboxSurvivesShutdown() {
        var machine = PoolStateMachine<TestJob>(workerCount: 1, maxWaitQueue: 10)
        _ = machine.next(worker: 0)
        _ = machine.submit("handed", id: 1)
        _ = machine.shutdown()
        #expect(names(machine.next(worker: 0)) == ["handed"])
        guard case .exit = machine.next(worker: 0) else { Issue.record("expected exit"); return }
    }

    @Test("group commit: a batchable job takes the batchable jobs queued behind it, up to the limit")
    func batchesFormFromQueuedWrites() {
        var machine = PoolStateMachine<TestJob>(workerCount: 1, maxWaitQueue: 100, maxBatch: 3)
        for index in 0..<5 { _ = machine.submit(TestJob("w\(index)", batchable: true), id: UInt64(index)) }
        #expect(names(machine.next(worker: 0)) == ["w0", "w1", "w2"])
        #expect(names(machine.next(worker: 0)) == ["w3", "w4"])
    }

    @Test("group commit keeps arrival order: a batch stops at the first job that cannot join")
    func batchesStopAtUnbatchable() {
        var machine = PoolStateMachine<TestJob>(workerCount: 1, maxWaitQueue: 100, maxBatch: 10)
        _ = machine.submit(TestJob("w0", batchable: true), id: 0)
        _ = machine.submit(TestJob("w1", batchable: true), id: 1)
        _ = machine.submit(TestJob("tx", batchable: false), id: 2)
        _ = machine.submit(TestJob("w3", batchable: true), id: 3)
        #expect(names(machine.next(worker: 0)) == ["w0", "w1"])
        #expect(names(machine.next(worker: 0)) == ["tx"])
        #expect(names(machine.next(worker: 0)) == ["w3"])
    }

    @Test("a lone job runs by itself at once; group commit off means batches of one")
    func noBatchingWithoutQueue() {
        var alone = PoolStateMachine<TestJob>(workerCount: 1, maxWaitQueue: 10, maxBatch: 64)
        _ = alone.next(worker: 0)
        guard case .wake(worker: 0) = alone.submit(TestJob("w", batchable: true), id: 0) else { Issue.record("expected wake"); return }
        #expect(names(alone.next(worker: 0)) == ["w"])

        var off = PoolStateMachine<TestJob>(workerCount: 1, maxWaitQueue: 10, maxBatch: 1)
        _ = off.submit(TestJob("a", batchable: true), id: 0)
        _ = off.submit(TestJob("b", batchable: true), id: 1)
        #expect(names(off.next(worker: 0)) == ["a"])
    }

    @Test("one expiry timer: armed for the earliest queued deadline, expired jobs leave, re-armed for the next")
    func expiryTimer() {
        let start = ContinuousClock.now
        func at(_ seconds: Int) -> ContinuousClock.Instant { start.advanced(by: .seconds(seconds)) }
        var machine = PoolStateMachine<TestJob>(workerCount: 1, maxWaitQueue: 10)
        guard case .enqueued(armTimer: at(5), wake: nil) = machine.submit(TestJob("t5", batchable: false, deadline: at(5)), id: 1) else {
            Issue.record("the first queued job arms the timer"); return
        }
        // A later deadline needs no timer change; an earlier one re-arms it.
        guard case .enqueued(armTimer: nil, wake: nil) = machine.submit(TestJob("t9", batchable: false, deadline: at(9)), id: 2),
            case .enqueued(armTimer: at(3), wake: nil) = machine.submit(TestJob("t3", batchable: false, deadline: at(3)), id: 3)
        else { Issue.record("expected the timer to move only for an earlier deadline"); return }
        #expect(machine.timerDeadline == at(3))

        let first = machine.expire(now: at(3))
        #expect(first.expired.map(\.name) == ["t3"])
        #expect(first.rearm == at(5))
        let second = machine.expire(now: at(6))
        #expect(second.expired.map(\.name) == ["t5"])
        #expect(second.rearm == at(9))
        #expect(machine.waitingCount == 1)
        #expect(names(machine.next(worker: 0)) == ["t9"])
        // Nothing queued: the timer stays disarmed, and the next queued job arms it again.
        let third = machine.expire(now: at(7))
        #expect(third.expired.isEmpty && third.rearm == nil && machine.timerDeadline == nil)
        guard case .enqueued(armTimer: at(20), wake: nil) = machine.submit(TestJob("t20", batchable: false, deadline: at(20)), id: 4) else {
            Issue.record("expected the timer to be armed again"); return
        }
    }
    private func writes(_ names: String...) -> [TestJob] { names.map { TestJob($0, batchable: true) } }

    @Test("a group with many writes holds the next group back until it has committed")
    func largeGroupHoldsTheNextBack() {
        var machine = PoolStateMachine<TestJob>(workerCount: 2, maxWaitQueue: 100, maxBatch: 64, holdThreshold: 3)
        for (id, job) in writes("a", "b", "c").enumerated() { _ = machine.submit(job, id: UInt64(id)) }
        #expect(names(machine.next(worker: 0)) == ["a", "b", "c"])
        guard case .wait = machine.next(worker: 1) else { Issue.record("worker 1 should wait"); return }
        // Worker 1 is idle, but the running group of 3 holds new calls in the queue.
        guard case .enqueued(_, wake: nil) = machine.submit(TestJob("d", batchable: true), id: 3),
            case .enqueued(_, wake: nil) = machine.submit(TestJob("e", batchable: true), id: 4)
        else { Issue.record("expected d and e to wait"); return }
        #expect(machine.idleCount == 1 && machine.waitingCount == 2)
        // It has committed: the idle worker takes the queue.
        #expect(machine.committed(worker: 0) == 1)
        #expect(names(machine.next(worker: 1)) == ["d", "e"])
        // Worker 0 comes back after answering its callers and finds nothing to do.
        guard case .wait = machine.next(worker: 0) else { Issue.record("worker 0 should wait"); return }
    }

    @Test("small running groups hold nothing back, and a full group waiting never waits")
    func smallGroupsAndFullGroupsStartAtOnce() {
        var small = PoolStateMachine<TestJob>(workerCount: 2, maxWaitQueue: 100, maxBatch: 64, holdThreshold: 4)
        for (id, job) in writes("a", "b", "c").enumerated() { _ = small.submit(job, id: UInt64(id)) }
        #expect(names(small.next(worker: 0)) == ["a", "b", "c"])
        _ = small.next(worker: 1)
        guard case .wake(worker: 1) = small.submit(TestJob("d", batchable: true), id: 3) else {
            Issue.record("a group of 3 (< 4) should not hold d back"); return
        }

        var full = PoolStateMachine<TestJob>(workerCount: 2, maxWaitQueue: 100, maxBatch: 2, holdThreshold: 2)
        for (id, job) in writes("a", "b").enumerated() { _ = full.submit(job, id: UInt64(id)) }
        #expect(names(full.next(worker: 0)) == ["a", "b"])
        _ = full.next(worker: 1)
        guard case .enqueued(_, wake: nil) = full.submit(TestJob("c", batchable: true), id: 2),
            case .enqueued(_, wake: 1) = full.submit(TestJob("d", batchable: true), id: 3)
        else { Issue.record("the second queued call makes a full group and wakes worker 1"); return }
        #expect(names(full.next(worker: 1)) == ["c", "d"])
    }

    @Test("calls that run as statements of their own (reads, other kinds) never hold the next group back")
    func onlySharedStatementsHold() {
        var machine = PoolStateMachine<TestJob>(workerCount: 2, maxWaitQueue: 100, maxBatch: 64, holdThreshold: 2)
        for id in 0..<3 {
            var read = TestJob("r\(id)", batchable: true)
            read.smallSharedCalls = 0
            _ = machine.submit(read, id: UInt64(id))
        }
        #expect(names(machine.next(worker: 0)) == ["r0", "r1", "r2"])
        _ = machine.next(worker: 1)
        guard case .wake(worker: 1) = machine.submit(TestJob("w", batchable: true), id: 3) else {
            Issue.record("a group of calls with statements of their own should not hold w back"); return
        }
    }

    @Test("with group commit off nothing is ever held back")
    func noHoldWithoutGroupCommit() {
        var machine = PoolStateMachine<TestJob>(workerCount: 2, maxWaitQueue: 100, maxBatch: 1, holdThreshold: 2)
        _ = machine.next(worker: 0)
        _ = machine.next(worker: 1)
        guard case .wake = machine.submit(TestJob("a", batchable: true), id: 0),
            case .wake = machine.submit(TestJob("b", batchable: true), id: 1)
        else { Issue.record("expected both workers woken"); return }
    }
}
