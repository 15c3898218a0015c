@testable import StepRunPostgres
import Testing

/// The state machine's lending (inline calls, held-group handover) and each worker's connection
/// lifecycle (connect, backoff, reconnect), on a manual clock.
@Suite("Pool state machine: lending and connections")
struct PoolLendingStateTests {
    @Test("a quiet pool lends an idle worker, which counts busy until given back")
    func lendsOnlyWhenQuiet() {
        var machine = makeMachine(workers: 2, queue: 10)
        #expect(machine.lend() == nil, "no worker idle yet")
        _ = machine.next(worker: 0)
        _ = machine.next(worker: 1)
        let lent = machine.lend()
        #expect(lent != nil && machine.busyCount == 1 && machine.idleCount == 1)
        #expect(machine.lend() == nil, "a busy worker means the pool is not quiet")
        #expect(machine.giveBack(worker: lent!).isQuiet)
        #expect(machine.idleCount == 2)
    }

    @Test("given back with nothing queued, the worker is idle again and not woken")
    func giveBackIdle() {
        var machine = makeMachine(workers: 1, queue: 10)
        _ = machine.next(worker: 0)
        let worker = machine.lend()!
        let actions = machine.giveBack(worker: worker)
        #expect(actions.wake == nil && actions.isQuiet)
        #expect(machine.busyCount == 0 && machine.idleCount == 1)
        #expect(machine.submit("a", id: 1).wake == 0, "the given-back worker takes the next call")
    }

    @Test("work queued while a worker is lent wakes it when given back, and it takes the queue")
    func giveBackWakesForQueuedWork() {
        var machine = makeMachine(workers: 1, queue: 10)
        _ = machine.next(worker: 0)
        let worker = machine.lend()!
        let queued = machine.submit("queued", id: 1)
        #expect(queued.wake == nil, "no idle worker: the call waits")
        #expect(machine.giveBack(worker: worker).wake == worker)
        #expect(names(machine.next(worker: worker)) == ["queued"])
    }

    @Test("a lent worker is not idle at shutdown: given back, it is woken and exits")
    func giveBackAtShutdown() {
        var machine = makeMachine(workers: 1, queue: 10)
        _ = machine.next(worker: 0)
        let worker = machine.lend()!
        #expect(machine.shutdown().wakeAll.isEmpty)
        #expect(machine.giveBack(worker: worker).wake == worker)
        #expect(isExit(machine.next(worker: worker)))
    }

    @Test("handed over, the worker is woken and finishes that work before anything queued")
    func handOverRunsFirst() {
        var machine = makeMachine(workers: 1, queue: 10)
        _ = machine.next(worker: 0)
        let worker = machine.lend()!
        _ = machine.submit("queued", id: 1)
        #expect(machine.handOver("in-flight", to: worker).wake == worker)
        #expect(names(machine.next(worker: worker)) == ["in-flight"])
        #expect(names(machine.next(worker: worker)) == ["queued"])
        #expect(isWait(machine.next(worker: worker)))
    }

    @Test("a held group's commit lends an idle worker for the next group; with none idle or nothing queued, nothing")
    func committedLendsForTheNextGroup() {
        var machine = makeMachine(workers: 2, queue: 100, groupCommitMax: 64, hold: 2)
        for id in 0..<2 { _ = machine.submit(TestJob("w\(id)", batchable: true), id: UInt64(id)) }
        #expect(names(machine.next(worker: 0)) == ["w0", "w1"])
        #expect(machine.committed(worker: 0).startNextGroup == nil, "nothing queued")
        #expect(machine.committed(worker: 0).startNextGroup == nil, "a group commits once")

        var busy = makeMachine(workers: 1, queue: 100, groupCommitMax: 64, hold: 2)
        for id in 0..<3 { _ = busy.submit(TestJob("w\(id)", batchable: true), id: UInt64(id)) }
        _ = busy.next(worker: 0)
        _ = busy.submit(TestJob("later", batchable: true), id: 9)
        #expect(busy.committed(worker: 0).startNextGroup == nil, "no idle worker: the committing one takes the queue itself")
        #expect(names(busy.next(worker: 0)) == ["later"])
    }

    @Test("a worker connects at once at start, and after losing a connection")
    func connectsAtOnce() {
        var machine = makeMachine(workers: 1, queue: 1)
        #expect(machine.connectDecision(worker: 0) == .connect)
        #expect(machine.connected(worker: 0) == false, "a first connect is not a reconnect")
        #expect(machine.connections.connectedCount == 1)
        machine.connectionClosed(worker: 0)
        #expect(machine.connections.connectedCount == 0)
        #expect(machine.connectDecision(worker: 0) == .connect)
    }

    @Test("failed connects back off exponentially up to the maximum; calls fail fast meanwhile")
    func exponentialBackoff() {
        let clock = MockClock()
        var machine = makeMachine(workers: 1, queue: 1, clock: clock, initialBackoff: .milliseconds(50), maxBackoff: .milliseconds(300))
        var waits: [Duration] = []
        for _ in 0..<5 {
            #expect(machine.connectDecision(worker: 0) == .connect)
            let wait = machine.connectFailed(worker: 0, reason: "refused")
            waits.append(wait)
            clock.advance(by: wait - .milliseconds(1))
            #expect(machine.connectDecision(worker: 0) == .failFast(lastFailure: "refused"), "still backing off")
            clock.advance(by: .milliseconds(1))
        }
        #expect(waits == [.milliseconds(50), .milliseconds(100), .milliseconds(200), .milliseconds(300), .milliseconds(300)])
        #expect(machine.connectDecision(worker: 0) == .connect)
        let reconnected = machine.connected(worker: 0)
        #expect(reconnected, "connecting after failures is a reconnect")
        machine.connectionClosed(worker: 0)
        let wait = machine.connectFailed(worker: 0, reason: "refused")
        #expect(wait == .milliseconds(50), "a success resets the backoff")
    }

    @Test("when one worker connects the database is back: workers backing off may try at once")
    func reconnectGenerationWakesBackoff() {
        let clock = MockClock()
        var machine = makeMachine(workers: 2, queue: 1, clock: clock, initialBackoff: .seconds(10), maxBackoff: .seconds(10))
        _ = machine.connectFailed(worker: 0, reason: "refused")
        clock.advance(by: .seconds(1))
        #expect(machine.connectDecision(worker: 0) == .failFast(lastFailure: "refused"))
        #expect(machine.connectDecision(worker: 1) == .connect)
        _ = machine.connected(worker: 1)
        #expect(machine.connectDecision(worker: 0) == .connect, "9 s of backoff left, but the database is back")
        _ = machine.connectFailed(worker: 0, reason: "still refused")
        #expect(machine.connectDecision(worker: 0) == .failFast(lastFailure: "still refused"), "a failure after the wake-up backs off again")
        #expect(machine.connections.connectedCount == 1)
    }
}
