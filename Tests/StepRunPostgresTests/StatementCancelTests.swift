import Foundation
import StepRunCore
@testable import StepRunPostgres
import Testing
import StepRunTesting

/// A schema of its own, so that locking its table blocks nobody else's tests.
private func isolatedStore(poolSize: Int) async throws -> (StepRunRepository, PostgresPool, schema: String) {
    let schema = "steprun_cancel_\(UUID().uuidString.prefix(8).lowercased())"
    let pool = PostgresPool(
        configuration: PostgresConfiguration(connectionString: try TestDatabase.url, schema: schema, poolSize: poolSize),
        logger: TestDatabase.logger)
    try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger)
    return (StepRunRepository(pool: pool), pool, schema)
}

/// Runs blocking libpq calls off the cooperative pool.
private func onThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}

/// A connection of the test's own holding `LOCK TABLE … IN ACCESS EXCLUSIVE MODE` in an open
/// transaction until `release`.
private final class TableLock: @unchecked Sendable {
    // Used by one thread at a time (`onThread`, awaited).
    private var connection: PGConnection?

    init(schema: String) async throws {
        let url = try TestDatabase.url
        try await onThread { [self] in
            let connection = try PGConnection(parameters: [("dbname", url)])
            try connection.simpleQuery("BEGIN; LOCK TABLE \"\(schema)\".step_runs IN ACCESS EXCLUSIVE MODE")
            self.connection = connection
        }
    }

    func release() async throws {
        try await onThread { [self] in
            try connection?.simpleQuery("ROLLBACK")
            connection?.close()
        }
    }
}

@Suite("Cancelling statements whose callers stopped waiting")
struct StatementCancelTests {
    @Test("with the table locked, calls with 1 s deadlines get DEADLINE_EXCEEDED, their statements are cancelled, the connections are free again while the lock is held, and nothing they sent is stored")
    func deadlineCancelsBlockedStatements() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 2)
        let runID = UUID()
        let lock = try await TableLock(schema: schema)

        // More calls than connections: some run (blocked on the lock), some wait in the queue;
        // several of them share a group commit.
        let codes = await withTaskGroup(of: (StatusCode?, Duration, String).self) { group in
            for index in 0..<8 {
                group.addTask {
                    let started = ContinuousClock.now
                    let error = await storeError {
                        _ = try await store.beginStep(runID: runID, step: "blocked-\(index)", timeout: .seconds(1))
                    }
                    return (error?.code, ContinuousClock.now - started, error?.message ?? "ok")
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(codes.allSatisfy { $0.0 == .deadlineExceeded }, "\(codes)")
        #expect(codes.allSatisfy { $0.1 < .seconds(4) }, "\(codes)")

        // The lock is still held, yet the pool's connections are free: a call that needs no lock
        // runs at once.
        #expect(await eventually(timeout: .seconds(10)) { pool.statistics.busy == 0 })
        #expect(pool.statistics.cancelledStatements >= 1)
        let started = ContinuousClock.now
        try await pool.withConnection(deadline: .now.advanced(by: .seconds(10))) { connection throws(StepRunError) in
            try connection.simpleQuery("SELECT 1", context: "probing")
        }
        #expect(ContinuousClock.now - started < .seconds(5))

        // Health answers by its own deadline while the table is locked: not serving, and why.
        let healthStarted = ContinuousClock.now
        let healthError = await storeError { _ = try await store.checkHealth(deadline: .now.advanced(by: .seconds(4))) }
        // It plans to answer a second early; the rest is room for a loaded machine (2.47 s was seen
        // against a 2 s deadline with a 250 ms margin). Blocked by the lock, it would not answer at all.
        #expect(ContinuousClock.now - healthStarted < .seconds(6))
        #expect(healthError?.code == .unavailable)
        #expect(healthError?.message.contains("health query") == true, "\(String(describing: healthError))")

        try await lock.release()
        _ = try await store.beginStep(runID: runID, step: "after", timeout: .seconds(10))
        #expect(try await store.stepStatuses(runID: runID) == ["after": .running], "a cancelled call's write was committed")
        _ = try await store.checkHealth(deadline: .now.advanced(by: .seconds(5)))
        await pool.shutdown()
    }

    @Test("the watchdog cancels a statement past its deadline, and a cancel due for work that has ended never reaches the connection's next statement")
    func cancelHitsOnlyItsOwnStatement() async throws {
        let url = try TestDatabase.url
        try await onThread {
            let connection = try PGConnection(parameters: [("dbname", url)])
            defer { connection.close() }
            let watch = StatementWatch(workers: 1, logger: TestDatabase.logger)
            let started = ContinuousClock.now
            watch.begin(worker: 0, until: .now.advanced(by: .milliseconds(50)), on: connection)
            #expect(throws: PGError.self) { try connection.simpleQuery("SELECT pg_sleep(30)") }
            watch.end(worker: 0)
            #expect(ContinuousClock.now - started < .seconds(10))
            #expect(watch.cancelledCount == 1)
            // Due at once, ended at once: the timer fires around `end`, and the statement after it
            // must never be the one cancelled.
            for _ in 0..<20 {
                watch.begin(worker: 0, until: .now, on: connection)
                watch.end(worker: 0)
                try connection.simpleQuery("SELECT pg_sleep(0.02)")
            }
        }
    }

    @Test("a server that only reads (default_transaction_read_only) counts as not connected: UNAVAILABLE saying why, and nothing stored")
    func readOnlyServerIsUnavailable() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1)
        let runID = UUID()
        // The URL asks for any server and makes this session read-only; libpq would otherwise
        // refuse it itself (the pool's default target_session_attrs=read-write).
        let base = try TestDatabase.url
        let separator = base.contains("?") ? "&" : "?"
        let readOnlyURL = base + separator + "target_session_attrs=any&options=-c%20default_transaction_read_only%3Don"
        let readOnlyPool = PostgresPool(
            configuration: PostgresConfiguration(connectionString: readOnlyURL, schema: schema, poolSize: 1), logger: TestDatabase.logger)
        let readOnlyStore = StepRunRepository(pool: readOnlyPool)
        let write = await storeError { _ = try await readOnlyStore.beginStep(runID: runID, step: "refused", timeout: .seconds(5)) }
        #expect(write?.code == .unavailable)
        #expect(write?.message.contains("read-only") == true, "\(String(describing: write))")
        let health = await storeError { _ = try await readOnlyStore.checkHealth(deadline: .now.advanced(by: .seconds(5))) }
        #expect(health?.code == .unavailable)
        #expect(health?.message.contains("read-only") == true, "\(String(describing: health))")
        #expect(try await store.stepStatuses(runID: runID).isEmpty)
        await readOnlyPool.shutdown()
        await pool.shutdown()
    }
}
