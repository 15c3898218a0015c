@testable import StepRunPostgres
import Testing

@Suite("Pool state machine")
struct PoolStateMachineTests {
    @Test("a job goes straight to an idle worker")
    func idleWorkerTakesJob() {
        var machine = PoolStateMachine<String>(workerCount: 2, maxWaitQueue: 1)
        guard case .wait = machine.next(worker: 0) else { Issue.record("worker 0 should wait"); return }
        guard case .wake(worker: 0) = machine.submit("a", id: 1) else { Issue.record("expected wake 0"); return }
        guard case .run("a") = machine.next(worker: 0) else { Issue.record("worker 0 should run a"); return }
        #expect(machine.busyCount == 1)
    }

    @Test("with every worker busy jobs queue up to the limit, then are rejected")
    func queueIsBounded() {
        var machine = PoolStateMachine<String>(workerCount: 1, maxWaitQueue: 2)
        guard case .enqueued = machine.submit("a", id: 1), case .enqueued = machine.submit("b", id: 2) else {
            Issue.record("expected two enqueued")
            return
        }
        guard case .reject(.queueFull(limit: 2)) = machine.submit("c", id: 3) else { Issue.record("expected queueFull"); return }
        #expect(machine.waitingCount == 2)
    }

    @Test("queued jobs run in arrival order; removed ones never run")
    func fifoAndRemoval() {
        var machine = PoolStateMachine<String>(workerCount: 1, maxWaitQueue: 10)
        for (id, job) in ["a", "b", "c"].enumerated() { _ = machine.submit(job, id: UInt64(id)) }
        #expect(machine.remove(id: 1) == "b")
        #expect(machine.remove(id: 1) == nil)
        guard case .run("a") = machine.next(worker: 0), case .run("c") = machine.next(worker: 0), case .wait = machine.next(worker: 0) else {
            Issue.record("expected a, c, then wait")
            return
        }
    }

    @Test("shutdown hands back queued jobs, wakes idle workers, refuses new jobs and lets workers exit")
    func shutdown() {
        var machine = PoolStateMachine<String>(workerCount: 2, maxWaitQueue: 10)
        _ = machine.next(worker: 1)
        guard case .wake(worker: 1) = machine.submit("running", id: 1) else { Issue.record("expected wake"); return }
        _ = machine.next(worker: 1)
        _ = machine.submit("queued", id: 2)
        let (queued, wake) = machine.shutdown()
        #expect(queued == ["queued"])
        #expect(wake.isEmpty)
        guard case .reject(.shuttingDown) = machine.submit("late", id: 3) else { Issue.record("expected shuttingDown"); return }
        guard case .exit = machine.next(worker: 0), case .exit = machine.next(worker: 1) else { Issue.record("expected exit"); return }
    }

    @Test("a job handed to a worker's mailbox is not lost to shutdown")
    func mailboxSurvivesShutdown() {
        var machine = PoolStateMachine<String>(workerCount: 1, maxWaitQueue: 10)
        _ = machine.next(worker: 0)
        _ = machine.submit("handed", id: 1)
        _ = machine.shutdown()
        guard case .run("handed") = machine.next(worker: 0), case .exit = machine.next(worker: 0) else {
            Issue.record("expected the handed job then exit")
            return
        }
    }
}
