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

typealias TestMachine = PoolStateMachine<TestJob, MockClock>

func makeMachine(
    workers: Int, queue: Int, groupCommitMax: Int = 1, hold: Int = .max, clock: MockClock = MockClock(),
    initialBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(1)
) -> TestMachine {
    TestMachine(
        workerCount: workers, maxWaitQueue: queue, groupCommitMax: groupCommitMax, holdThreshold: hold, clock: clock,
        initialBackoff: initialBackoff, maxBackoff: maxBackoff)
}

func names(_ action: TestMachine.WorkerAction) -> [String]? {
    if case .run(let jobs) = action { return jobs.map(\.name) }
    return nil
}

func isWait(_ action: TestMachine.WorkerAction) -> Bool {
    if case .wait = action { return true }
    return false
}

func isExit(_ action: TestMachine.WorkerAction) -> Bool {
    if case .exit = action { return true }
    return false
}

extension PoolActions where Job == TestJob {
    /// Nothing to do but (maybe) wake `wake` and arm the timer: no job failed, nothing else.
    var failed: [String] { fail.map(\.name) }
    var isQuiet: Bool { fail.isEmpty && wakeAll.isEmpty && startNextGroup == nil }
}

@Suite("Pool state machine")
struct PoolStateMachineTests {
    @Test("a job goes straight to an idle worker")
    func idleWorkerTakesJob() {
        var machine = makeMachine(workers: 2, queue: 1)
        #expect(isWait(machine.next(worker: 0)))
        let actions = machine.submit("a", id: 1)
        #expect(actions.wake == 0 && actions.isQuiet && actions.armTimer == nil)
        #expect(names(machine.next(worker: 0)) == ["a"])
        #expect(machine.busyCount == 1)
    }

    @Test("with every worker busy jobs queue up to the limit, then are rejected")
    func queueIsBounded() {
        var machine = makeMachine(workers: 1, queue: 2)
        #expect(machine.submit("a", id: 1).isQuiet && machine.submit("b", id: 2).isQuiet)
        let rejected = machine.submit("c", id: 3)
        #expect(rejected.failed == ["c"] && rejected.failure == .queueFull(limit: 2))
        #expect(machine.waitingCount == 2)
    }

    @Test("queued jobs run in arrival order; removed ones never run")
    func fifoAndRemoval() {
        var machine = makeMachine(workers: 1, queue: 10)
        for (id, job) in ["a", "b", "c"].enumerated() { _ = machine.submit(TestJob(stringLiteral: job), id: UInt64(id)) }
        let removed = machine.remove(id: 1)
        #expect(removed.failed == ["b"] && removed.failure == .cancelled)
        #expect(machine.remove(id: 1).fail.isEmpty)
        #expect(names(machine.next(worker: 0)) == ["a"])
        #expect(names(machine.next(worker: 0)) == ["c"])
        #expect(isWait(machine.next(worker: 0)))
    }

    @Test("cancellation finds a job by its id in O(1), before and after the queue's front is compacted away")
    func removalByIDAcrossCompaction() {
        var queue = PoolQueue<String>()
        for id in 0..<200 { queue.append("j\(id)", id: UInt64(id)) }
        for _ in 0..<150 { _ = queue.popFirst() }  // compacts: the array's front is dropped
        #expect(queue.remove(id: 10) == nil, "an id already taken is not found")
        #expect(queue.remove(id: 170) == "j170")
        #expect(queue.remove(id: 170) == nil)
        queue.append("late", id: 500)
        #expect(queue.remove(id: 199) == "j199")
        #expect(queue.count == 49)
        #expect(queue.popFirst() == "j150")
        #expect(queue.remove(id: 500) == "late")
        while queue.popFirst() != nil {}
        #expect(queue.isEmpty)
        queue.append("again", id: 501)  // positions keep counting after the queue emptied
        #expect(queue.remove(id: 501) == "again" && queue.isEmpty)
    }

    @Test("shutdown hands back queued jobs, wakes idle workers, refuses new jobs and lets workers exit")
    func shutdown() {
        var machine = makeMachine(workers: 2, queue: 10)
        _ = machine.next(worker: 1)
        #expect(machine.submit("running", id: 1).wake == 1)
        _ = machine.next(worker: 1)
        _ = machine.submit("queued", id: 2)
        let actions = machine.shutdown()
        #expect(actions.failed == ["queued"] && actions.failure == .shuttingDown)
        #expect(actions.wakeAll.isEmpty)
        let late = machine.submit("late", id: 3)
        #expect(late.failed == ["late"] && late.failure == .shuttingDown)
        #expect(isExit(machine.next(worker: 0)) && isExit(machine.next(worker: 1)))
    }

    @Test("shutdown wakes the idle workers so they exit")
    func shutdownWakesIdleWorkers() {
        var machine = makeMachine(workers: 2, queue: 10)
        _ = machine.next(worker: 0)
        _ = machine.next(worker: 1)
        #expect(Set(machine.shutdown().wakeAll) == [0, 1])
        #expect(isExit(machine.next(worker: 0)))
    }

    @Test("a job handed to a worker's mailbox is not lost to shutdown")
    func mailboxSurvivesShutdown() {
        var machine = makeMachine(workers: 1, queue: 10)
        _ = machine.next(worker: 0)
        _ = machine.submit("handed", id: 1)
        _ = machine.shutdown()
        #expect(names(machine.next(worker: 0)) == ["handed"])
        #expect(isExit(machine.next(worker: 0)))
    }

    @Test("group commit: a batchable job takes the batchable jobs queued behind it, up to the limit")
    func groupsFormFromQueuedWrites() {
        var machine = makeMachine(workers: 1, queue: 100, groupCommitMax: 3)
        for index in 0..<5 { _ = machine.submit(TestJob("w\(index)", batchable: true), id: UInt64(index)) }
        #expect(names(machine.next(worker: 0)) == ["w0", "w1", "w2"])
        #expect(names(machine.next(worker: 0)) == ["w3", "w4"])
    }

    @Test("group commit keeps arrival order: a group stops at the first job that cannot join")
    func groupsStopAtUnbatchable() {
        var machine = makeMachine(workers: 1, queue: 100, groupCommitMax: 10)
        _ = machine.submit(TestJob("w0", batchable: true), id: 0)
        _ = machine.submit(TestJob("w1", batchable: true), id: 1)
        _ = machine.submit(TestJob("tx", batchable: false), id: 2)
        _ = machine.submit(TestJob("w3", batchable: true), id: 3)
        #expect(names(machine.next(worker: 0)) == ["w0", "w1"])
        #expect(names(machine.next(worker: 0)) == ["tx"])
        #expect(names(machine.next(worker: 0)) == ["w3"])
    }

    @Test("a lone job runs by itself at once; group commit off means groups of one")
    func noGroupWithoutQueue() {
        var alone = makeMachine(workers: 1, queue: 10, groupCommitMax: 64)
        _ = alone.next(worker: 0)
        #expect(alone.submit(TestJob("w", batchable: true), id: 0).wake == 0)
        #expect(names(alone.next(worker: 0)) == ["w"])

        var off = makeMachine(workers: 1, queue: 10, groupCommitMax: 1)
        _ = off.submit(TestJob("a", batchable: true), id: 0)
        _ = off.submit(TestJob("b", batchable: true), id: 1)
        #expect(names(off.next(worker: 0)) == ["a"])
    }

    @Test("one expiry timer: armed for the earliest queued deadline, expired jobs leave, re-armed for the next")
    func expiryTimer() {
        let clock = MockClock()
        func at(_ seconds: Int) -> ContinuousClock.Instant { clock.at(seconds) }
        var machine = makeMachine(workers: 1, queue: 10, clock: clock)
        #expect(machine.submit(TestJob("t5", batchable: false, deadline: at(5)), id: 1).armTimer == at(5), "the first queued job arms the timer")
        // A later deadline needs no timer change; an earlier one re-arms it.
        let later = machine.submit(TestJob("t9", batchable: false, deadline: at(9)), id: 2)
        let earlier = machine.submit(TestJob("t3", batchable: false, deadline: at(3)), id: 3)
        #expect(later.armTimer == nil && later.wake == nil && earlier.armTimer == at(3) && earlier.wake == nil)
        #expect(machine.timerDeadline == at(3))

        clock.advance(by: .seconds(3))
        let first = machine.expire()
        #expect(first.failed == ["t3"] && first.failure == .expired)
        #expect(first.armTimer == at(5))
        clock.advance(by: .seconds(3))
        let second = machine.expire()
        #expect(second.failed == ["t5"])
        #expect(second.armTimer == at(9))
        #expect(machine.waitingCount == 1)
        #expect(names(machine.next(worker: 0)) == ["t9"])
        // Nothing queued: the timer stays disarmed, and the next queued job arms it again.
        clock.advance(by: .seconds(1))
        let third = machine.expire()
        #expect(third.fail.isEmpty && third.armTimer == nil && machine.timerDeadline == nil)
        #expect(machine.submit(TestJob("t20", batchable: false, deadline: at(20)), id: 4).armTimer == at(20))
    }

    @Test("a job not yet past its deadline is not expired, even a moment before")
    func expiryIsExact() {
        let clock = MockClock()
        var machine = makeMachine(workers: 1, queue: 10, clock: clock)
        _ = machine.submit(TestJob("t", batchable: false, deadline: clock.at(milliseconds: 100)), id: 1)
        clock.advance(by: .milliseconds(99))
        #expect(machine.expire().fail.isEmpty)
        clock.advance(by: .milliseconds(1))
        #expect(machine.expire().failed == ["t"])
    }

    private func writes(_ names: String...) -> [TestJob] { names.map { TestJob($0, batchable: true) } }

    @Test("a group with many writes holds the next group back until it has committed")
    func largeGroupHoldsTheNextBack() {
        var machine = makeMachine(workers: 2, queue: 100, groupCommitMax: 64, hold: 3)
        for (id, job) in writes("a", "b", "c").enumerated() { _ = machine.submit(job, id: UInt64(id)) }
        #expect(names(machine.next(worker: 0)) == ["a", "b", "c"])
        #expect(isWait(machine.next(worker: 1)))
        // Worker 1 is idle, but the running group of 3 holds new calls in the queue.
        #expect(machine.submit(TestJob("d", batchable: true), id: 3).wake == nil)
        #expect(machine.submit(TestJob("e", batchable: true), id: 4).wake == nil)
        #expect(machine.idleCount == 1 && machine.waitingCount == 2)
        // It has committed: the committing thread starts the next group on the idle worker.
        #expect(machine.committed(worker: 0).startNextGroup == 1)
        #expect(names(machine.next(worker: 1)) == ["d", "e"])
        // Worker 0 comes back after answering its callers and finds nothing to do.
        #expect(isWait(machine.next(worker: 0)))
    }

    @Test("small running groups hold nothing back, and a full group waiting never waits")
    func smallGroupsAndFullGroupsStartAtOnce() {
        var small = makeMachine(workers: 2, queue: 100, groupCommitMax: 64, hold: 4)
        for (id, job) in writes("a", "b", "c").enumerated() { _ = small.submit(job, id: UInt64(id)) }
        #expect(names(small.next(worker: 0)) == ["a", "b", "c"])
        _ = small.next(worker: 1)
        #expect(small.submit(TestJob("d", batchable: true), id: 3).wake == 1, "a group of 3 (< 4) should not hold d back")

        var full = makeMachine(workers: 2, queue: 100, groupCommitMax: 2, hold: 2)
        for (id, job) in writes("a", "b").enumerated() { _ = full.submit(job, id: UInt64(id)) }
        #expect(names(full.next(worker: 0)) == ["a", "b"])
        _ = full.next(worker: 1)
        #expect(full.submit(TestJob("c", batchable: true), id: 2).wake == nil)
        #expect(full.submit(TestJob("d", batchable: true), id: 3).wake == 1, "the second queued call makes a full group and wakes worker 1")
        #expect(names(full.next(worker: 1)) == ["c", "d"])
    }

    @Test("calls that run as statements of their own (reads, other kinds) never hold the next group back")
    func onlySharedStatementsHold() {
        var machine = makeMachine(workers: 2, queue: 100, groupCommitMax: 64, hold: 2)
        for id in 0..<3 {
            var read = TestJob("r\(id)", batchable: true)
            read.smallSharedCalls = 0
            _ = machine.submit(read, id: UInt64(id))
        }
        #expect(names(machine.next(worker: 0)) == ["r0", "r1", "r2"])
        _ = machine.next(worker: 1)
        #expect(machine.submit(TestJob("w", batchable: true), id: 3).wake == 1)
    }

    @Test("with group commit off nothing is ever held back")
    func noHoldWithoutGroupCommit() {
        var machine = makeMachine(workers: 2, queue: 100, groupCommitMax: 1, hold: 2)
        _ = machine.next(worker: 0)
        _ = machine.next(worker: 1)
        #expect(machine.submit(TestJob("a", batchable: true), id: 0).wake != nil)
        #expect(machine.submit(TestJob("b", batchable: true), id: 1).wake != nil)
    }
}
