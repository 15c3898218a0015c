import Dispatch
import Foundation
import StepRunCore
@testable import StepRunPostgres
import Testing
import StepRunTesting

@Suite("Connection pool and migrations against a real server")
struct PoolTests {
    private func pool(_ url: String, size: Int = 2, queue: Int = 16, statementTimeout: Duration = .seconds(30)) -> PostgresPool {
        PostgresPool(
            configuration: PostgresConfiguration(
                connectionString: url, poolSize: size, maxWaitQueue: queue, statementTimeout: statementTimeout,
                connectTimeout: .seconds(2)),
            logger: TestDatabase.logger)
    }

    private func sleep(_ pool: PostgresPool, seconds: Double, deadline: ContinuousClock.Instant? = nil) async throws {
        try await pool.withConnection(deadline: deadline) { connection throws(StepRunError) in
            try connection.simpleQuery("SELECT pg_sleep(\(seconds))", context: "sleeping")
        }
    }

    @Test("Postgres stopped gives UNAVAILABLE; started again, calls succeed without restarting anything")
    func poolHealsAfterOutage() async throws {
        let scratch = try await ScratchPostgres.create()
        let pool = pool(scratch.url)
        try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger)
        let store = StepRunRepository(pool: pool)
        let runID = UUID()
        _ = try await store.beginStep(runID: runID, step: "before")

        try await scratch.stop()
        let started = ContinuousClock.now
        let error = await storeError { _ = try await store.beginStep(runID: runID, step: "during", timeout: .seconds(5)) }
        #expect(error?.code == .unavailable)
        #expect(ContinuousClock.now - started < .seconds(5))

        try await scratch.start()
        let restarted = ContinuousClock.now
        var healed = false
        while ContinuousClock.now - restarted < .seconds(15) {
            if (try? await store.beginStep(runID: runID, step: "after")) != nil {
                healed = true
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(healed)
        #expect(ContinuousClock.now - restarted < .seconds(3))
        #expect(try await store.stepStatuses(runID: runID) == ["before": .running, "after": .running])
        await pool.shutdown()
        await scratch.destroy()
    }

    @Test("an unreachable database is UNAVAILABLE with a clear message")
    func unreachableDatabaseIsUnavailable() async throws {
        let pool = pool("postgresql://postgres@127.0.0.1:1/postgres")
        let store = StepRunRepository(pool: pool)
        let error = await storeError { _ = try await store.getStepRun(runID: UUID(), step: "s") }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains("database unreachable") == true)
        await pool.shutdown()
    }

    @Test("a full wait queue refuses with RESOURCE_EXHAUSTED")
    func fullQueueIsResourceExhausted() async throws {
        let pool = pool(try TestDatabase.url, size: 1, queue: 2)
        let hold = await ConnectionHold.hold(pool, deadline: .now.advanced(by: .seconds(60)))
        async let queued1: Void = sleep(pool, seconds: 0)
        async let queued2: Void = sleep(pool, seconds: 0)
        #expect(await eventually { pool.statistics.waiting == 2 })
        let error = await storeError { try await sleep(pool, seconds: 0) }
        #expect(error?.code == .resourceExhausted)
        try await hold.release()
        try await queued1
        try await queued2
        await pool.shutdown()
    }

    @Test("a call still waiting for a connection at its deadline is DEADLINE_EXCEEDED, without waiting for the connection")
    func waitingPastDeadlineIsDeadlineExceeded() async throws {
        let pool = pool(try TestDatabase.url, size: 1)
        let hold = await ConnectionHold.hold(pool, deadline: .now.advanced(by: .seconds(60)))
        let started = ContinuousClock.now
        let error = await storeError { try await sleep(pool, seconds: 0, deadline: .now.advanced(by: .milliseconds(150))) }
        let waited = ContinuousClock.now - started
        #expect(error?.code == .deadlineExceeded)
        // The connection stayed busy throughout: the call failed at its deadline, not when a connection freed up.
        #expect(waited < .seconds(3))
        try await hold.release()
        await pool.shutdown()
    }

    @Test("a statement over statement_timeout is DEADLINE_EXCEEDED and the connection stays usable")
    func statementTimeoutIsDeadlineExceeded() async throws {
        let pool = pool(try TestDatabase.url, size: 1, statementTimeout: .milliseconds(200))
        let error = await storeError { try await sleep(pool, seconds: 2) }
        #expect(error?.code == .deadlineExceeded)
        try await sleep(pool, seconds: 0)
        #expect(pool.statistics.connected == 1)
        await pool.shutdown()
    }

    @Test("shutdown fails waiting calls with UNAVAILABLE and later calls too")
    func shutdownFailsNewCalls() async throws {
        let pool = pool(try TestDatabase.url, size: 1)
        await pool.shutdown()
        let error = await storeError { try await sleep(pool, seconds: 0) }
        #expect(error?.code == .unavailable)
    }

    @Test("migrations from several daemons at once apply exactly once")
    func concurrentMigrationsAreSafe() async throws {
        let url = try TestDatabase.url
        let schema = "steprun_migrate_\(UInt32.random(in: 0...UInt32.max))"
        let pools = (0..<4).map { _ in
            PostgresPool(configuration: PostgresConfiguration(connectionString: url, schema: schema, poolSize: 1), logger: TestDatabase.logger)
        }
        let reports = try await withThrowingTaskGroup(of: MigrationReport.self) { group in
            for pool in pools {
                group.addTask { try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger) }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(reports.filter { $0.from == 0 }.count == 1)
        #expect(reports.allSatisfy { $0.to == Migrations.latestVersion })
        let store = StepRunRepository(pool: pools[0])
        _ = try await store.beginStep(runID: UUID(), step: "works")
        try await pools[0].withConnection(deadline: nil) { connection throws(StepRunError) in
            try connection.simpleQuery("DROP SCHEMA \(schema) CASCADE", context: "cleanup")
        }
        for pool in pools { await pool.shutdown() }
    }

    /// A pool of one connection on a fresh schema of its own, not yet migrated.
    private func singleConnectionPool(_ prefix: String) throws -> (PostgresPool, String) {
        let schema = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
        let configuration = PostgresConfiguration(connectionString: try TestDatabase.url, schema: schema, poolSize: 1)
        return (PostgresPool(configuration: configuration, logger: TestDatabase.logger), schema)
    }

    private func dropSchemaAndShutDown(_ schema: String, _ pool: PostgresPool) async throws {
        try await pool.withConnection(deadline: nil) { connection throws(StepRunError) in
            try connection.simpleQuery("DROP SCHEMA \(schema) CASCADE", context: "cleanup")
        }
        await pool.shutdown()
    }

    @Test("migration 2 turns the column CHECKs into domains: rows written before stay, no table is rewritten, the rules still hold")
    func domainMigrationKeepsRowsAndRules() async throws {
        // One connection: every statement below was prepared on it before the migration.
        let (pool, schema) = try singleConnectionPool("steprun_upgrade")
        #expect(try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger, through: 1) == MigrationReport(from: 0, to: 1))
        let store = StepRunRepository(pool: pool)
        let runID = UUID()
        _ = try await store.transaction([.beginStep(runID: runID, step: "zero", input: .empty, recovery: nil)])
        let (first, _) = try await store.beginStep(runID: runID, step: "first", input: JSONPayload(["n": .int(1)]))
        try await store.completeStep(stepRunID: first.id, output: JSONPayload(["done": .bool(true)]))
        let (second, _) = try await store.beginStep(runID: runID, step: "second")
        let attempt = try await store.beginAttempt(stepRunID: second.id)
        try await store.failAttempt(attemptID: attempt.id, error: JSONPayload(["why": .string("x")]))
        func storage() async throws -> [String] {
            try await pool.withConnection(deadline: nil) { connection throws(StepRunError) in
                let rows = try connection.simpleQuery("""
                    SELECT relname || ':' || relfilenode FROM pg_class
                    WHERE relnamespace = '\(schema)'::regnamespace AND relname IN ('step_runs', 'step_attempts', 'step_runs_pkey')
                    ORDER BY relname
                    """, context: "storage")
                return (0..<rows.count).map { rows[$0, 0] ?? "" }
            }
        }
        let before = try await storage()

        #expect(try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger, through: 2) == MigrationReport(from: 1, to: 2))
        #expect(try await storage() == before)
        let results = try await store.transaction([.beginStep(runID: runID, step: "third", input: .empty, recovery: nil)])
        #expect(results.count == 1)
        let kept = try #require(try await store.getStepRun(runID: runID, step: "first"))
        #expect(kept.status == .completed && kept.output == JSONPayload(["done": .bool(true)]) && kept.input == JSONPayload(["n": .int(1)]))
        #expect(try await store.completedSteps(runID: runID) == ["first"])
        // The connection prepared its statements against the old column types: it prepares them
        // again instead of failing (`PGError.isStalePlan`), in a transaction (above), alone and grouped.
        _ = try await store.completeStep(stepRunID: second.id, output: .empty)
        #expect(try await store.completedSteps(runID: runID) == ["first", "second"])
        let grouped = try await withThrowingTaskGroup(of: BeginDecision.self) { group in
            for index in 0..<24 {
                group.addTask { try await store.beginStep(runID: runID, step: "many-\(index)").1 }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(grouped.count == 24 && grouped.allSatisfy { $0 == .execute })

        // What the column CHECKs refused, the domains refuse.
        let refused = [
            "INSERT INTO \(schema).step_runs (id, run_id, step, status, output, inserted_at, updated_at) VALUES (gen_random_uuid(), gen_random_uuid(), 's', 'running', '[1]', now(), now())",
            "INSERT INTO \(schema).step_runs (id, run_id, step, status, inserted_at, updated_at) VALUES (gen_random_uuid(), gen_random_uuid(), '', 'running', now(), now())",
            "UPDATE \(schema).step_runs SET status = 'done' WHERE id = '\(first.id.uuidString)'",
            "UPDATE \(schema).step_runs SET recovery = '\"x\"' WHERE id = '\(first.id.uuidString)'",
            "UPDATE \(schema).step_attempts SET attempt_number = 0 WHERE id = '\(attempt.id.uuidString)'",
            "UPDATE \(schema).step_attempts SET status = 'pending' WHERE id = '\(attempt.id.uuidString)'",
            "UPDATE \(schema).step_attempts SET error = '[]' WHERE id = '\(attempt.id.uuidString)'",
        ]
        for sql in refused {
            let error = await storeError {
                try await pool.withConnection(deadline: nil) { connection throws(StepRunError) in
                    _ = try connection.simpleQuery(sql, context: "breaking a rule")
                }
            }
            #expect(error?.message.contains("violates check constraint") == true, "\(sql)")
        }
        try await dropSchemaAndShutDown(schema, pool)
    }

    @Test("migration 3: completing a step is a HOT update (no index entries) — at version 2 it never was — and completion order still holds")
    func completionsAreHOTUpdates() async throws {
        // One connection, so one backend does every update and reports its counts below.
        let (pool, schema) = try singleConnectionPool("steprun_hot")
        let store = StepRunRepository(pool: pool)
        /// Begins `count` steps of a new run, then completes them, last begun first.
        func beginThenComplete(_ count: Int) async throws -> UUID {
            let runID = UUID()
            var begun: [StepRun] = []
            for index in 0..<count {
                begun.append(try await store.beginStep(runID: runID, step: "step-\(index)", input: JSONPayload(["n": .int(Int64(index))])).0)
            }
            for run in begun.reversed() {
                _ = try await store.completeStep(stepRunID: run.id, output: JSONPayload(["done": .bool(true)]))
            }
            return runID
        }
        /// Steps as a worker runs them: each completed right after it is claimed.
        func claimAndComplete(_ count: Int) async throws {
            let runID = UUID()
            for index in 0..<count {
                let (run, _) = try await store.beginStep(runID: runID, step: "step-\(index)", input: JSONPayload(["n": .int(Int64(index))]))
                _ = try await store.completeStep(stepRunID: run.id, output: JSONPayload(["done": .bool(true)]))
            }
        }
        func updates() async throws -> (all: Int, hot: Int) {
            try await pool.withConnection(deadline: nil) { connection throws(StepRunError) in
                // The backend reports its counts as it goes idle after this statement.
                _ = try connection.simpleQuery("SELECT pg_stat_force_next_flush()", context: "statistics")
                let rows = try connection.simpleQuery(
                    "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = '\(schema).step_runs'::regclass",
                    context: "statistics")
                return (Int(rows[0, 0] ?? "") ?? -1, Int(rows[0, 1] ?? "") ?? -1)
            }
        }

        #expect(try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger, through: 2) == MigrationReport(from: 0, to: 2))
        try await claimAndComplete(40)
        let before = try await updates()
        #expect(before.all == 40 && before.hot == 0, "\(before)")

        #expect(try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger) == MigrationReport(from: 2, to: 3))
        try await claimAndComplete(40)
        let after = try await updates()
        // Not necessarily all 40: a page's room runs out once the old versions on it can no longer be
        // pruned, which an open transaction elsewhere in the database (another test's) prevents.
        #expect(after.all - before.all == 40 && after.hot - before.hot >= 30, "\(after)")
        // Completion order comes from a sort now, not from the dropped index.
        let runID = try await beginThenComplete(12)
        #expect(try await store.completedSteps(runID: runID) == (0..<12).reversed().map { "step-\($0)" })
        #expect(try await store.completedOutputs(runID: runID).count == 12)

        try await dropSchemaAndShutDown(schema, pool)
    }

    @Test("an invalid schema name is refused by the migrator")
    func invalidSchemaNameIsRefused() async throws {
        let pool = PostgresPool(
            configuration: PostgresConfiguration(connectionString: try TestDatabase.url, schema: "Robert'); DROP", poolSize: 1),
            logger: TestDatabase.logger)
        let error = await storeError { try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger) }
        #expect(error?.code == .invalidArgument)
        await pool.shutdown()
    }
}
