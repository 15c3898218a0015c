import Dispatch
import Foundation
import StepRunCore
@testable import StepRunPostgres
import Testing

@Suite("Group commit")
struct GroupCommitTests {
    /// A pool on a schema of its own, so a test can add triggers without touching other tests.
    private func isolatedStore(poolSize: Int) async throws -> (StepRunRepository, PostgresPool, String) {
        let schema = "steprun_gc_\(UInt32.random(in: 0...UInt32.max))"
        let pool = PostgresPool(
            configuration: PostgresConfiguration(connectionString: try TestDatabase.url, schema: schema, poolSize: poolSize),
            logger: TestDatabase.logger)
        try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger)
        return (StepRunRepository(pool: pool), pool, schema)
    }

    private func drop(_ schema: String, _ pool: PostgresPool) async throws {
        try await pool.withConnection(deadline: nil) { connection throws(StepRunError) in
            try connection.simpleQuery("DROP SCHEMA \(schema) CASCADE", context: "cleanup")
        }
        await pool.shutdown()
    }

    /// Holds the pool's only connection until `waiting` calls are queued behind it, so they form one group.
    private func whileBlocked<T: Sendable>(
        _ pool: PostgresPool, waiting: Int, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let gate = DispatchSemaphore(value: 0)
        async let blocker: Void = pool.withConnection(deadline: nil) { _ throws(StepRunError) in gate.wait() }
        #expect(await poll { pool.statistics.busy == 1 })
        async let result = body()
        #expect(await poll { pool.statistics.waiting >= waiting })
        gate.signal()
        try await blocker
        return try await result
    }

    private func poll(_ condition: () -> Bool) async -> Bool {
        for _ in 0..<500 {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    @Test("queued writes commit together and each gets the outcome it would get alone")
    func batchedOutcomesMatchUnbatched() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1)
        let runID = UUID()
        let (done, _) = try await store.beginStep(runID: runID, step: "done")
        try await store.completeStep(stepRunID: done.id, output: ["kept": true])
        let before = pool.statistics.groupCommits

        let outcomes = try await whileBlocked(pool, waiting: 5) {
            await withTaskGroup(of: (String, Result<StoreResult, StepRunError>).self) { group in
                let calls: [(String, StoreRequest)] = [
                    ("new-a", .beginStep(runID: runID, step: "a", input: .empty, recovery: nil)),
                    ("new-b", .scheduleStep(runID: runID, step: "b", input: .empty, recovery: nil)),
                    ("stale", .completeStep(stepRunID: done.id, output: ["late": true])),
                    ("missing", .failStep(stepRunID: UUID(), error: [:])),
                    ("dup-done", .beginStep(runID: runID, step: "done", input: .empty, recovery: nil)),
                ]
                for (name, request) in calls {
                    group.addTask {
                        do { return (name, .success(try await store.perform(request, deadline: nil))) } catch let error as StepRunError {
                            return (name, .failure(error))
                        } catch { return (name, .failure(.internal("\(error)"))) }
                    }
                }
                return await group.reduce(into: [String: Result<StoreResult, StepRunError>]()) { $0[$1.0] = $1.1 }
            }
        }
        #expect(pool.statistics.groupCommits > before)
        guard case .success(.begin(_, .execute)) = outcomes["new-a"], case .success(.schedule(_, .schedule)) = outcomes["new-b"],
            case .failure(.staleStepRun(.completed)) = outcomes["stale"], case .failure(.notFound) = outcomes["missing"],
            case .success(.begin(_, .skip)) = outcomes["dup-done"]
        else {
            Issue.record("unexpected outcomes \(outcomes)")
            return
        }
        #expect(try await store.getStepRun(runID: runID, step: "done")?.output == ["kept": true])
        #expect(try await store.stepStatuses(runID: runID) == ["done": .completed, "a": .running, "b": .pending])
        try await drop(schema, pool)
    }

    @Test("a call that fails unexpectedly inside a group fails alone; the others are applied")
    func failureIsIsolated() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1)
        try await pool.withConnection(deadline: nil) { connection throws(StepRunError) in
            try connection.simpleQuery("""
                CREATE FUNCTION \(schema).explode() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN IF NEW.step = 'explode' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$;
                CREATE TRIGGER explode BEFORE INSERT ON \(schema).step_runs FOR EACH ROW EXECUTE FUNCTION \(schema).explode();
                """, context: "trigger")
        }
        let runID = UUID()
        let steps = ["one", "two", "explode", "three", "four"]
        let results = try await whileBlocked(pool, waiting: steps.count) {
            await withTaskGroup(of: (String, StepRunError?).self) { group in
                for step in steps {
                    group.addTask {
                        do {
                            _ = try await store.beginStep(runID: runID, step: step)
                            return (step, nil)
                        } catch let error as StepRunError { return (step, error) } catch { return (step, .internal("\(error)")) }
                    }
                }
                return await group.reduce(into: [String: StepRunError?]()) { $0[$1.0] = $1.1 }
            }
        }
        #expect(results["explode"]??.code == .internal)
        for step in steps where step != "explode" {
            #expect(results[step] == .some(nil), "\(step): \(String(describing: results[step]))")
        }
        #expect(Set(try await store.stepStatuses(runID: runID).keys) == ["one", "two", "three", "four"])
        try await drop(schema, pool)
    }

    @Test("no acknowledgement before commit: every acknowledged write is visible to another connection at once")
    func acknowledgedMeansCommitted() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 2)
        let observer = PostgresPool(
            configuration: PostgresConfiguration(connectionString: try TestDatabase.url, schema: schema, poolSize: 4), logger: TestDatabase.logger)
        let reader = StepRunRepository(pool: observer)
        let runID = UUID()
        let invisible = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<64 {
                group.addTask {
                    let (stepRun, _) = try await store.beginStep(runID: runID, step: "s\(index)")
                    return try await reader.getStepRun(runID: runID, step: "s\(index)")?.id != stepRun.id
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(invisible == 0)
        #expect(pool.statistics.groupCommits > 0, "the load should have formed groups: \(pool.statistics)")
        await observer.shutdown()
        try await drop(schema, pool)
    }

    @Test("the claim and numbering rules hold when calls are grouped")
    func rulesHoldUnderGrouping() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 2)
        let runID = UUID()
        let decisions = try await withThrowingTaskGroup(of: BeginDecision.self) { group in
            for _ in 0..<64 { group.addTask { try await store.beginStep(runID: runID, step: "once").1 } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(decisions.filter { $0 == .execute }.count == 1)
        let stepRun = try #require(try await store.getStepRun(runID: runID, step: "once"))
        let numbers = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<32 { group.addTask { try await store.beginAttempt(stepRunID: stepRun.id).attemptNumber } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(numbers.sorted() == Array(1...32))
        let completions = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<32 {
                group.addTask { (try? await store.completeStep(stepRunID: stepRun.id, output: [:])) != nil }
            }
            return await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(completions == 1)
        try await drop(schema, pool)
    }
}
