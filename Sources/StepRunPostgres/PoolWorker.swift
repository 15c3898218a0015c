import Foundation
import Logging
import StepRunCore

/// The loop one pool thread runs: take a job, make sure the connection is alive, run it on the
/// execution path the job calls for. Whether to connect, and how long to back off after a failed
/// attempt, is the state machine's decision (`ConnectionLifecycle`); the worker only makes the
/// blocking libpq calls.
struct PoolWorker {
    let index: Int
    let pool: PostgresPool
    /// This worker's connection, kept in its slot so that the pool can lend it (`LentConnection`).
    private var connection: PGConnection? {
        get { pool.slots[index].connection }
        nonmutating set { pool.slots[index].connection = newValue }
    }
    private var lastFailure = "not connected yet"

    init(index: Int, pool: PostgresPool) {
        self.index = index
        self.pool = pool
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
            case .run(let jobs) where jobs.count == 1 && jobs[0].continuesStartedStatement:
                // Its statement is in flight on the connection (handed over): no deadline check or
                // liveness probe first (either would throw the statement's answer away with the connection).
                if let connection {
                    pool.watch.begin(worker: index, until: jobs[0].latestDeadline, on: connection)
                    jobs[0].finishInFlight(on: connection, afterCommit: afterCommit) { pool.counters.countGroupCommit(calls: $0) }
                    pool.watch.end(worker: index)
                    if !connection.isUsable { dropConnection() }
                } else {
                    jobs[0].fail(.unavailable("database connection lost"))
                }
            case .run(let jobs):
                let live = PoolJob.failingExpired(jobs)
                guard !live.isEmpty else { continue }
                ensureConnection()
                guard let connection else {
                    for job in live { job.fail(.unavailable("database unreachable: \(lastFailure)")) }
                    continue
                }
                pool.watch.begin(worker: index, until: live.map(\.deadline).max() ?? live[0].deadline, on: connection)
                if live.count == 1 {
                    live[0].runAlone(on: connection)
                } else {
                    GroupCommit.run(live.map(\.groupCall), on: connection, afterCommit: afterCommit) { pool.counters.countGroupCommit(calls: $0) }
                }
                pool.watch.end(worker: index)
                if !connection.isUsable {
                    dropConnection()
                }
            }
        }
    }

    /// Passed to `GroupCommit` as its `afterCommit`: the state machine may start the next group.
    private func afterCommit() {
        pool.groupCommitted(worker: index)
    }

    private mutating func ensureConnection() {
        if let connection, connection.isUsable { return }
        if connection != nil {
            pool.logger.warning("database connection lost; reconnecting", metadata: ["worker": "\(index)"])
            dropConnection()
        }
        let worker = index
        if case .failFast(let reason) = pool.state.withLock({ $0.connectDecision(worker: worker) }) {
            lastFailure = reason
            return
        }
        do {
            let opened = try PGConnection(parameters: pool.configuration.connectionParameters)
            connection = opened
            if pool.state.withLock({ $0.connected(worker: worker) }) {
                pool.logger.info("database connection re-established", metadata: ["worker": "\(index)"])
            }
        } catch {
            lastFailure = error.message
            let retryIn = pool.state.withLock { $0.connectFailed(worker: worker, reason: error.message) }
            pool.logger.warning(
                "cannot connect to the database",
                metadata: ["worker": "\(index)", "error": "\(error.message)", "retry_in": "\(retryIn)"])
        }
    }

    private mutating func dropConnection() {
        guard let connection else { return }
        connection.close()
        self.connection = nil
        let worker = index
        pool.state.withLock { $0.connectionClosed(worker: worker) }
    }
}
