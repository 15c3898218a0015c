import Dispatch
import Foundation
import Logging
import StepRunCore
import Synchronization

/// The loop one pool thread runs: take a job, make sure the connection is alive, run it.
struct PoolWorker {
    let index: Int
    let pool: PostgresPool
    /// This worker's connection, kept in its slot so that the pool can lend it (`runInline`).
    private var connection: PGConnection? {
        get { pool.slots[index].connection }
        nonmutating set { pool.slots[index].connection = newValue }
    }
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
            case .run(let jobs) where jobs.count == 1 && jobs[0].continuesStartedStatement:
                // Its statement is in flight on the connection: no deadline check or liveness probe
                // first (either would throw the statement's answer away with the connection).
                if let connection {
                    pool.watch.begin(worker: index, until: jobs[0].latestDeadline, on: connection)
                    jobs[0].finishInFlight(on: connection, afterCommit: afterCommit) { pool.recordGroupCommit(calls: $0) }
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
                    GroupCommit.run(live, on: connection, afterCommit: afterCommit) { pool.recordGroupCommit(calls: $0) }
                }
                pool.watch.end(worker: index)
                if !connection.isUsable {
                    dropConnection()
                }
            }
        }
    }

    /// Passed to `GroupCommit` for the pool's `groupCommitted`.
    private func afterCommit() {
        pool.groupCommitted(worker: index)
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
