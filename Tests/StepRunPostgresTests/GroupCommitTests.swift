import Dispatch
import Foundation
import StepRunCore
@testable import StepRunPostgres
import Synchronization
import Testing
import StepRunTesting

@Suite("Group commit")
struct GroupCommitTests {
    /// A pool on a schema of its own, so a test can add triggers without touching other tests.
    private func isolatedStore(poolSize: Int, groupHold: Int = 8) async throws -> (StepRunRepository, PostgresPool, String) {
        let schema = "steprun_gc_\(UInt32.random(in: 0...UInt32.max))"
        let pool = PostgresPool(
            configuration: PostgresConfiguration(
                connectionString: try TestDatabase.url, schema: schema, poolSize: poolSize, groupCommitHold: groupHold),
            logger: TestDatabase.logger)
        try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger)
        return (StepRunRepository(pool: pool), pool, schema)
    }

    private func drop(_ schema: String, _ pool: PostgresPool) async throws {
        try await execute("DROP SCHEMA \(schema) CASCADE", on: pool, context: "cleanup")
        await pool.shutdown()
    }

    /// Runs SQL of the test's own (a trigger, the cleanup) on one of the pool's connections.
    private func execute(_ sql: String, on pool: PostgresPool, context: String) async throws {
        try await pool.withConnection(deadline: nil) { connection throws(StepRunError) in
            _ = try connection.simpleQuery(sql, context: context)
        }
    }

    /// Holds the pool's only connection until `waiting` calls are queued behind it, so they form one group.
    private func whileBlocked<T: Sendable>(
        _ pool: PostgresPool, waiting: Int, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let hold = await ConnectionHold.hold(pool)
        async let result = body()
        #expect(await eventually(timeout: .seconds(120)) { pool.statistics.waiting >= waiting })
        try await hold.release()
        return try await result
    }

    /// Performs the named calls concurrently; each name's outcome.
    private func performAll(_ store: StepRunRepository, _ calls: [(String, StoreRequest)]) async -> [String: Result<StoreResult, StepRunError>] {
        await withTaskGroup(of: (String, Result<StoreResult, StepRunError>).self) { group in
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

    @Test("queued writes commit together and each gets the outcome it would get alone")
    func batchedOutcomesMatchUnbatched() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1)
        let runID = UUID()
        let (done, _) = try await store.beginStep(runID: runID, step: "done")
        try await store.completeStep(stepRunID: done.id, output: ["kept": true])
        let before = pool.statistics.groupCommits

        let calls: [(String, StoreRequest)] = [
            ("new-a", .beginStep(runID: runID, step: "a", input: .empty, recovery: nil)),
            ("new-b", .scheduleStep(runID: runID, step: "b", input: .empty, recovery: nil)),
            ("stale", .completeStep(stepRunID: done.id, output: ["late": true])),
            ("missing", .failStep(stepRunID: UUID(), error: [:])),
            ("dup-done", .beginStep(runID: runID, step: "done", input: .empty, recovery: nil)),
        ]
        let outcomes = try await whileBlocked(pool, waiting: calls.count) { await performAll(store, calls) }
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

    @Test("multi-row statements: grouped begin_step and complete_step calls get exactly the outcomes of single calls")
    func multiRowStatementsMatchSingleCalls() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1)
        // Records which statement wrote each row: the claims below must really go through the
        // shared begin_steps statement (its text is the only one with unnest).
        try await execute("""
            CREATE TABLE \(schema).written_by (step text, shared bool);
            CREATE FUNCTION \(schema).note() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO \(schema).written_by VALUES (NEW.step, current_query() LIKE '%unnest(%'); RETURN NULL; END $$;
            CREATE TRIGGER note AFTER INSERT OR UPDATE ON \(schema).step_runs FOR EACH ROW EXECUTE FUNCTION \(schema).note();
            """, on: pool, context: "trigger")
        let runID = UUID()
        let (failed, _) = try await store.beginStep(runID: runID, step: "failed", input: ["v": 1], recovery: ["r": 1])
        _ = try await store.failStep(stepRunID: failed.id, error: ["e": 1])
        _ = try await store.scheduleStep(runID: runID, step: "pending", input: ["from": "schedule"], recovery: ["r": "scheduled"])
        let (idle, _) = try await store.beginStep(runID: runID, step: "running-idle")
        let (running, _) = try await store.beginStep(runID: runID, step: "running")
        let (runningToo, _) = try await store.beginStep(runID: runID, step: "running-too")
        let (twice, _) = try await store.beginStep(runID: runID, step: "completed-twice")
        let (done, _) = try await store.beginStep(runID: runID, step: "done")
        _ = try await store.completeStep(stepRunID: done.id, output: ["kept": true])
        let missing = UUID()
        let before = pool.statistics.groupCommittedCalls

        let calls: [(String, StoreRequest)] = [
            ("new-1", .beginStep(runID: runID, step: "new-1", input: ["n": 1], recovery: nil)),
            ("new-2", .beginStep(runID: runID, step: "new-2", input: ["n": 2], recovery: ["undo": true])),
            ("dup-a", .beginStep(runID: runID, step: "dup", input: .empty, recovery: nil)),
            ("dup-b", .beginStep(runID: runID, step: "dup", input: .empty, recovery: nil)),
            ("refail", .beginStep(runID: runID, step: "failed", input: ["v": 2], recovery: ["r": 2])),
            // A different input and recovery than scheduled: the scheduled ones must stay.
            ("claim-pending", .beginStep(runID: runID, step: "pending", input: ["from": "claim"], recovery: ["r": "claim"])),
            // A running row nothing else in the group touches (the completions below would race it).
            ("skip-running", .beginStep(runID: runID, step: "running-idle", input: ["new": true], recovery: nil)),
            ("skip-done", .beginStep(runID: runID, step: "done", input: .empty, recovery: nil)),
            ("complete-1", .completeStep(stepRunID: running.id, output: ["r": 1])),
            ("complete-2", .completeStep(stepRunID: runningToo.id, output: ["r": 2])),
            ("twice-a", .completeStep(stepRunID: twice.id, output: ["t": 1])),
            ("twice-b", .completeStep(stepRunID: twice.id, output: ["t": 2])),
            ("stale", .completeStep(stepRunID: done.id, output: ["late": true])),
            ("missing", .completeStep(stepRunID: missing, output: .empty)),
        ]
        let outcomes = try await whileBlocked(pool, waiting: calls.count) { await performAll(store, calls) }
        #expect(pool.statistics.groupCommittedCalls - before == calls.count, "all calls should have formed one group")

        func begin(_ name: String) -> (StepRun, BeginDecision)? {
            if case .success(.begin(let stepRun, let decision)) = outcomes[name] { return (stepRun, decision) }
            Issue.record("\(name): \(String(describing: outcomes[name]))")
            return nil
        }
        #expect(begin("new-1")?.1 == .execute && begin("new-1")?.0.input == ["n": 1])
        #expect(begin("new-2")?.1 == .execute && begin("new-2")?.0.recovery == ["undo": true])
        #expect(Set([begin("dup-a")?.1, begin("dup-b")?.1]) == [.execute, .skip], "one delivery of a duplicate claims it")
        #expect(begin("refail")?.1 == .execute && begin("refail")?.0.id == failed.id)
        #expect(begin("refail")?.0.input == ["v": 2] && begin("refail")?.0.recovery == ["r": 2], "a re-claimed failed row takes the new input")
        #expect(begin("refail")?.0.lastError == nil)
        #expect(begin("claim-pending")?.1 == .execute && begin("claim-pending")?.0.status == .running)
        #expect(begin("claim-pending")?.0.input == ["from": "schedule"], "a claimed pending row keeps its scheduled input")
        #expect(begin("claim-pending")?.0.recovery == ["r": "scheduled"], "a claimed pending row keeps its scheduled recovery")
        #expect(begin("skip-running")?.1 == .skip && begin("skip-running")?.0 == idle, "a running row is not re-claimed")
        #expect(begin("skip-done")?.1 == .skip && begin("skip-done")?.0.output == ["kept": true])

        guard case .success(.stepRun(let first)) = outcomes["complete-1"], first.status == .completed, first.output == ["r": 1],
            case .success(.stepRun(let second)) = outcomes["complete-2"], second.output == ["r": 2],
            case .failure(.staleStepRun(.completed)) = outcomes["stale"], case .failure(.notFound) = outcomes["missing"]
        else {
            Issue.record("unexpected complete outcomes \(outcomes)")
            return
        }
        // Two completions of one running step: exactly one wins, the other is told it is stale.
        var winners = 0
        for name in ["twice-a", "twice-b"] {
            switch outcomes[name] {
            case .success(.stepRun(let stepRun)) where stepRun.status == .completed: winners += 1
            case .failure(.staleStepRun(.completed)): break
            default: Issue.record("\(name): \(String(describing: outcomes[name]))")
            }
        }
        #expect(winners == 1)
        #expect(try await store.getStepRun(runID: runID, step: "done")?.output == ["kept": true])
        #expect(try await store.completedSteps(runID: runID).count == 4)
        #expect(try await store.getStepRun(runID: runID, step: "pending")?.input == ["from": "schedule"])
        #expect(try await store.getStepRun(runID: runID, step: "running-idle") == idle)
        let written = try await pool.withConnection(deadline: nil) { connection throws(StepRunError) in
            let rows = try connection.simpleQuery(
                "SELECT step, shared FROM \(schema).written_by WHERE step IN ('pending', 'failed')", context: "reading the log")
            return try (0..<rows.count).map { (row) throws(StepRunError) in "\(try rows.text(row, 0))=\(try rows.text(row, 1))" }
        }
        // Each was written once before the group (schedule; claim and fail) and once by its claim.
        #expect(written.sorted() == ["failed=f", "failed=f", "failed=t", "pending=f", "pending=t"], "the claims did not share the statement")
        try await drop(schema, pool)
    }

    @Test("payloads of every size up to the shared-statement limit, and every kind of character, come back as sent from a grouped claim and completion")
    func sharedStatementPayloads() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1)
        let runID = UUID()
        let text = #"quote " backslash \ slash / tab \#t newline \#n é 中 🎉 \#u{1} "#
        let payloads: [JSONPayload] = [0, 100, 2_000, 12_000].map { size in
            ["text": .string(String(repeating: text, count: size / text.utf8.count + 1)), "n": .int(Int64(size)), "null": .null]
        }
        // Input and recovery count together: only the small ones carry a recovery too.
        let claims: [StoreRequest] = payloads.indices.map { index in
            .beginStep(runID: runID, step: "s\(index)", input: payloads[index], recovery: index < 3 ? payloads[index] : nil)
        }
        #expect(claims.allSatisfy { StoreOperations.batchKind($0) != nil }, "every claim should share the statement")
        let before = pool.statistics.groupCommittedCalls
        let claimed = try await whileBlocked(pool, waiting: payloads.count) {
            try await withThrowingTaskGroup(of: (Int, StepRun).self) { group in
                for (index, claim) in claims.enumerated() {
                    group.addTask {
                        guard case .begin(let stepRun, let decision) = try await store.perform(claim, deadline: nil) else {
                            throw StepRunError.internal("not a claim's answer")
                        }
                        #expect(decision == .execute)
                        return (index, stepRun)
                    }
                }
                return try await group.reduce(into: [Int: StepRun]()) { $0[$1.0] = $1.1 }
            }
        }
        #expect(pool.statistics.groupCommittedCalls - before == payloads.count, "the claims should have formed one group")
        for (index, payload) in payloads.enumerated() {
            #expect(claimed[index]?.input == payload && claimed[index]?.recovery == (index < 3 ? payload : nil), "claim \(index)")
        }
        let completed = try await whileBlocked(pool, waiting: payloads.count) {
            try await withThrowingTaskGroup(of: (Int, StepRun).self) { group in
                for (index, payload) in payloads.enumerated() {
                    guard let id = claimed[index]?.id else { continue }
                    group.addTask { (index, try await store.completeStep(stepRunID: id, output: payload)) }
                }
                return try await group.reduce(into: [Int: StepRun]()) { $0[$1.0] = $1.1 }
            }
        }
        for (index, payload) in payloads.enumerated() {
            #expect(completed[index]?.output == payload, "completion \(index)")
            #expect(try await store.getStepRun(runID: runID, step: "s\(index)")?.output == payload)
        }
        try await drop(schema, pool)
    }

    @Test("a group far larger than the socket buffers goes through one pipeline without deadlocking")
    func largeGroupPipeline() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1)
        let runID = UUID()
        let filler = String(repeating: "x", count: 900_000)
        let before = pool.statistics.groupCommittedCalls
        // 16 claims of ~0.9 MB each: ~14 MB of statements out and ~14 MB of rows back in one round trip.
        let sizes = try await whileBlocked(pool, waiting: 16) {
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<16 {
                    group.addTask {
                        let (stepRun, decision) = try await store.beginStep(runID: runID, step: "big-\(index)", input: ["filler": .string(filler)])
                        #expect(decision == .execute)
                        #expect(stepRun.input == ["filler": .string(filler)])
                        return stepRun.input.text.utf8.count
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
        }
        #expect(sizes.count == 16 && sizes.allSatisfy { $0 > 900_000 })
        #expect(pool.statistics.groupCommittedCalls - before == 16, "the 16 claims should have formed one group")
        #expect(try await store.stepStatuses(runID: runID).count == 16)
        try await drop(schema, pool)
    }

    @Test("the next group may start once a group has committed: at that hook its writes are visible to other connections, and no caller is answered yet")
    func handOverAfterCommit() async throws {
        let (_, pool, schema) = try await isolatedStore(poolSize: 1)
        // A slow COMMIT (a deferred trigger): a hook that ran before it would see nothing yet.
        try await execute("""
            CREATE FUNCTION \(schema).linger() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN PERFORM pg_sleep(0.05); RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER linger AFTER INSERT ON \(schema).step_runs DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION \(schema).linger();
            """, on: pool, context: "trigger")
        let sql = StepRunSQL(schema: SchemaName(unchecked: schema))
        let runID = UUID()
        let answered = Mutex(0)
        // 3 KB inputs: the rows coming back overflow Postgres' 8 KB output buffer, so results
        // reach the client before the COMMIT has run; the hook must still wait for it.
        let input: JSONPayload = ["pad": .string(String(repeating: "x", count: 3000))]
        let calls = (0..<6).map { index in
            GroupCommit.Call(
                request: .beginStep(runID: runID, step: "s\(index)", input: input, recovery: nil), sql: sql,
                deadline: .now.advanced(by: .seconds(30)), completion: { _ in answered.withLock { $0 += 1 } })
        }
        let parameters = pool.configuration.connectionParameters
        let seen = try await pool.withConnection(deadline: nil) { connection throws(StepRunError) in
            var seen: (rows: String?, answered: Int)?
            let committed = GroupCommit.run(calls, on: connection, afterCommit: {
                let other = try? PGConnection(parameters: parameters)
                let rows = try? other?.simpleQuery("SELECT count(*) FROM \(schema).step_runs WHERE run_id = '\(runID)'")
                seen = (rows?[0, 0], answered.withLock { $0 })
                other?.close()
            })
            #expect(committed)
            return seen
        }
        #expect(seen?.rows == "6", "the group's rows when the hook ran: \(String(describing: seen))")
        #expect(seen?.answered == 0)
        #expect(answered.withLock { $0 } == 6)
        try await drop(schema, pool)
    }

    @Test("reads queued with writes share their round trip, run after COMMIT and see the group's writes")
    func readsRideAlong() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1)
        let runID = UUID()
        let (running, _) = try await store.beginStep(runID: runID, step: "running")
        let calls: [(String, StoreRequest)] = [
            ("read-statuses", .stepStatuses(runID: runID)),
            ("claim", .beginStep(runID: runID, step: "new", input: ["n": 1], recovery: nil)),
            ("read-new", .getStepRun(runID: runID, step: "new")),
            ("complete", .completeStep(stepRunID: running.id, output: ["done": true])),
            ("read-completed", .completedSteps(runID: runID)),
            ("read-missing", .getStepRun(runID: runID, step: "never")),
            ("read-attempts", .listAttempts(stepRunID: UUID())),
        ]
        let before = pool.statistics.groupCommits
        let outcomes = try await whileBlocked(pool, waiting: calls.count) { await performAll(store, calls) }
        #expect(pool.statistics.groupCommits == before + 1)
        guard case .success(.statuses(let statuses, nil)) = outcomes["read-statuses"],
            case .success(.foundStepRun(let found?)) = outcomes["read-new"],
            case .success(.steps(let completed, nil)) = outcomes["read-completed"],
            case .success(.foundStepRun(nil)) = outcomes["read-missing"],
            case .failure(.notFound) = outcomes["read-attempts"],
            case .success(.begin(let claimed, .execute)) = outcomes["claim"]
        else {
            Issue.record("unexpected outcomes \(outcomes)")
            return
        }
        #expect(statuses == ["running": .completed, "new": .running])
        #expect(found.id == claimed.id && found.input == ["n": 1])
        #expect(completed == ["running"])

        // A group of reads alone: one round trip, no transaction, the same answers as one by one.
        let readOnly: [StoreRequest] = (0..<8).map { _ in .stepStatuses(runID: runID) } + [.getStepRun(runID: runID, step: "new")]
        let answers = try await whileBlocked(pool, waiting: readOnly.count) {
            try await withThrowingTaskGroup(of: StoreResult.self) { group in
                for request in readOnly { group.addTask { try await store.perform(request, deadline: nil) } }
                return try await group.reduce(into: [StoreResult]()) { $0.append($1) }
            }
        }
        #expect(answers.count == readOnly.count)
        #expect(answers.filter { $0 == .statuses(["running": .completed, "new": .running]) }.count == 8)
        try await drop(schema, pool)
    }

    @Test("group planning: distinct begin_step and complete_step keys share a statement; repeats and others run alone")
    func planning() {
        let run = UUID()
        let id = UUID()
        let requests: [StoreRequest] = [
            .beginStep(runID: run, step: "a", input: .empty, recovery: nil),
            .completeStep(stepRunID: id, output: .empty),
            .beginStep(runID: run, step: "b", input: .empty, recovery: nil),
            .beginStep(runID: run, step: "a", input: .empty, recovery: nil),
            .failStep(stepRunID: id, error: .empty),
            .completeStep(stepRunID: UUID(), output: .empty),
            .scheduleStep(runID: run, step: "c", input: .empty, recovery: nil),
        ]
        func plan(_ requests: [StoreRequest]) -> [GroupCommit.StatementPlan] {
            GroupCommit.plan(requests.map { (StoreOperations.batchKind($0), StoreOperations.lockKey($0)) })
        }
        #expect(plan(requests) == [.batch([0, 2]), .batch([1, 5]), .single(3), .single(4), .single(6)])
        #expect(plan([requests[0], requests[4]]) == [.single(0), .single(1)])
        let sizable = JSONPayload(["pad": .string(String(repeating: "x", count: 12_000))])
        #expect(
            plan([requests[0], .beginStep(runID: run, step: "sizable", input: sizable, recovery: nil)]) == [.batch([0, 1])],
            "a 12 KB payload still shares the statement (arrays are sent in binary)")
        let huge = JSONPayload(["pad": .string(String(repeating: "x", count: 100_000))])
        #expect(plan([requests[0], .beginStep(runID: run, step: "huge", input: huge, recovery: nil)]) == [.single(0), .single(1)])
    }

    @Test("lock keys sort as their text forms (<uuid>/<step>, <uuid>) did: by UUID bytes, then step name")
    func lockKeyOrder() {
        // UUIDs that share leading bytes, so the comparison reaches the second half and the step.
        var generator = SystemRandomNumberGenerator()
        let ids: [UUID] = (0..<12).map { index in
            var bytes = [UInt8](repeating: UInt8(index % 3), count: 16)
            bytes[15] = UInt8.random(in: 0...3, using: &generator)
            bytes[7] = UInt8(index % 2) << 7
            return UUID(uuid: (bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
                               bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]))
        } + [UUID(), UUID(), UUID()]
        let steps: [String?] = [nil, "a", "b", "a/b", "é", "Z", ""]
        var keys: [LockKey] = [LockKey()]
        for id in ids {
            for step in steps { keys.append(LockKey(id: id, step: step)) }
        }
        func text(_ key: LockKey) -> String {
            guard let id = key.id else { return "" }
            return key.step.map { id.pgText + "/" + $0 } ?? id.pgText
        }
        for _ in 0..<20 {
            let shuffled = keys.shuffled(using: &generator)
            #expect(shuffled.sorted().map(text) == shuffled.map(text).sorted())
        }
        #expect(!(LockKey() < LockKey()))
        #expect(LockKey() < LockKey(id: ids[0]))
        #expect(LockKey(id: ids[0]) < LockKey(id: ids[0], step: ""))
    }

    @Test("a call that fails unexpectedly inside a group fails alone; the others are applied")
    func failureIsIsolated() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1)
        try await execute("""
            CREATE FUNCTION \(schema).explode() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.step = 'explode' THEN RAISE EXCEPTION 'boom'; END IF; RETURN NEW; END $$;
            CREATE TRIGGER explode BEFORE INSERT ON \(schema).step_runs FOR EACH ROW EXECUTE FUNCTION \(schema).explode();
            """, on: pool, context: "trigger")
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

    @Test("a group whose COMMIT fails: the call that broke it fails alone, the others are run again one by one and applied, nothing else is acknowledged")
    func failedCommitFallsBack() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1)
        let runID = UUID()
        let (running, _) = try await store.beginStep(runID: runID, step: "running")
        _ = try await store.scheduleStep(runID: runID, step: "pending", input: ["from": "schedule"])
        // Raises only at COMMIT, only for the step named poison (this schema is the test's own).
        try await execute("""
            CREATE FUNCTION \(schema).poison() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN IF NEW.step = 'poison' THEN RAISE EXCEPTION 'poisoned at commit'; END IF; RETURN NULL; END $$;
            CREATE CONSTRAINT TRIGGER poison AFTER INSERT OR UPDATE ON \(schema).step_runs DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION \(schema).poison();
            """, on: pool, context: "trigger")
        let calls: [(String, StoreRequest)] = [
            ("new-a", .beginStep(runID: runID, step: "a", input: ["n": 1], recovery: nil)),
            ("poison", .beginStep(runID: runID, step: "poison", input: .empty, recovery: nil)),
            ("claim-pending", .beginStep(runID: runID, step: "pending", input: ["from": "claim"], recovery: nil)),
            ("complete", .completeStep(stepRunID: running.id, output: ["done": true])),
            ("schedule", .scheduleStep(runID: runID, step: "later", input: .empty, recovery: nil)),
            ("stale", .failStep(stepRunID: UUID(), error: [:])),
            ("read-a", .getStepRun(runID: runID, step: "a")),
        ]
        let before = pool.statistics
        let outcomes = try await whileBlocked(pool, waiting: calls.count) { await performAll(store, calls) }
        #expect(pool.statistics.groupCommittedCalls == before.groupCommittedCalls, "the group should not have committed")
        guard case .failure(let poisoned) = outcomes["poison"], poisoned.code == .internal,
            case .success(.begin(let a, .execute)) = outcomes["new-a"], a.input == ["n": 1],
            case .success(.begin(let claimed, .execute)) = outcomes["claim-pending"], claimed.input == ["from": "schedule"],
            case .success(.stepRun(let completed)) = outcomes["complete"], completed.status == .completed,
            case .success(.schedule(_, .schedule)) = outcomes["schedule"],
            case .failure(.notFound) = outcomes["stale"],
            case .success(.foundStepRun(let found?)) = outcomes["read-a"], found.id == a.id
        else {
            Issue.record("unexpected outcomes \(outcomes)")
            try await drop(schema, pool)
            return
        }
        #expect(try await store.stepStatuses(runID: runID) == ["running": .completed, "pending": .running, "a": .running, "later": .pending])
        #expect(try await store.getStepRun(runID: runID, step: "running")?.output == ["done": true])
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

    @Test("groups holding the next group back (group-hold 2): 64 workers' claims and completions all land, grouped")
    func heldGroupsLoseNothing() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 2, groupHold: 2)
        let runID = UUID()
        // Holding needs calls to queue behind a running group; on a machine busy with other tests
        // the 64 workers' calls can trickle in one by one, so the workload runs up to three times.
        var passes = 0
        while passes == 0 || (pool.statistics.heldGroupHandovers == 0 && passes < 3) {
            try await heldGroupsPass(store, runID: runID, pass: passes)
            passes += 1
        }
        let completed = try await store.completedSteps(runID: runID)
        #expect(completed.count == 64 * 5 * passes)
        #expect(pool.statistics.groupCommits > 0)
        #expect(pool.statistics.heldGroupHandovers > 0)  // the next group started as a held group committed
        try await drop(schema, pool)
    }

    /// 64 workers each claiming and completing 5 steps of `runID`; records what went wrong.
    private func heldGroupsPass(_ store: StepRunRepository, runID: UUID, pass: Int) async throws {
        let failures = await withTaskGroup(of: [String].self) { group in
            for worker in 0..<64 {
                group.addTask {
                    var failures: [String] = []
                    for round in 0..<5 {
                        let step = "p\(pass)-w\(worker)-\(round)"
                        do {
                            let (stepRun, decision) = try await store.beginStep(runID: runID, step: step)
                            guard decision == .execute else { failures.append("\(step): \(decision)"); continue }
                            let done = try await store.completeStep(stepRunID: stepRun.id, output: ["n": .int(Int64(round))])
                            if done.status != .completed { failures.append("\(step): \(done.status)") }
                        } catch { failures.append("\(step): \(error)") }
                    }
                    return failures
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        #expect(failures.isEmpty, "\(failures.prefix(5))")
    }

    @Test("held groups with deadlines: each call is answered once — applied, or DEADLINE_EXCEEDED and not applied")
    func heldGroupsWithDeadlines() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 2, groupHold: 2)
        let runID = UUID()
        // Deadlines from 1 to 40 ms: many calls expire while queued behind a held group, some
        // of them in the batch a hand-over takes for the next group (`PostgresPool.startNextGroup`).
        let outcomes = await withTaskGroup(of: [(String, String)].self) { group in
            for worker in 0..<48 {
                group.addTask {
                    var outcomes: [(String, String)] = []
                    for round in 0..<4 {
                        let step = "d\(worker)-\(round)"
                        let deadline = ContinuousClock.now.advanced(by: .milliseconds(1 + (worker * 7 + round * 13) % 40))
                        do {
                            let result = try await store.perform(
                                .beginStep(runID: runID, step: step, input: .empty, recovery: nil), deadline: deadline)
                            guard case .begin(_, .execute) = result else {
                                outcomes.append((step, "unexpected \(result)"))
                                continue
                            }
                            outcomes.append((step, "applied"))
                        } catch let error as StepRunError where error.code == .deadlineExceeded {
                            outcomes.append((step, "expired"))
                        } catch {
                            outcomes.append((step, "\(error)"))
                        }
                    }
                    return outcomes
                }
            }
            return await group.reduce(into: [String: String]()) { all, outcomes in
                for (step, outcome) in outcomes { all[step] = outcome }
            }
        }
        #expect(outcomes.count == 48 * 4)
        for (step, outcome) in outcomes {
            let row = try await store.getStepRun(runID: runID, step: step)
            switch outcome {
            case "applied": #expect(row?.status == .running, "\(step)")
            case "expired": #expect(row == nil, "\(step) expired but was applied")
            default: Issue.record("\(step): \(outcome)")
            }
        }
        // The pool still serves everyone afterwards.
        let (late, decision) = try await store.beginStep(runID: runID, step: "after")
        #expect(decision == .execute && late.status == .running)
        try await drop(schema, pool)
    }
}
