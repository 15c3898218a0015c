import Dispatch
import Foundation
import StepRunCore
@testable import StepRunPostgres
import Testing
import StepRunTesting

/// Reads, and small begin_step / complete_step calls, that find the pool quiet run on the caller's
/// thread over an idle worker's connection (`PostgresConfiguration.inlineReadWait`,
/// `inlineWriteWait`); these tests hold that path to the pooled one.
@Suite("Inline reads and writes")
struct InlineReadTests {
    /// A store on a schema of its own, so a test may lock its tables without touching other tests.
    private func isolatedStore(
        poolSize: Int, inlineReadWait: Duration, inlineWriteWait: Duration = .zero
    ) async throws -> (StepRunRepository, PostgresPool, String) {
        let schema = "steprun_ir_\(UInt32.random(in: 0...UInt32.max))"
        let pool = PostgresPool(
            configuration: PostgresConfiguration(
                connectionString: try TestDatabase.url, schema: schema, poolSize: poolSize, inlineReadWait: inlineReadWait,
                inlineWriteWait: inlineWriteWait),
            logger: TestDatabase.logger)
        try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger)
        return (StepRunRepository(pool: pool), pool, schema)
    }

    private func drop(_ schema: String) async throws {
        let pool = PostgresPool(configuration: PostgresConfiguration(connectionString: try TestDatabase.url, poolSize: 1), logger: TestDatabase.logger)
        try await pool.withConnection(deadline: nil) { connection throws(StepRunError) in
            try connection.simpleQuery("DROP SCHEMA \(schema) CASCADE", context: "cleanup")
        }
        await pool.shutdown()
    }

    /// Calls the store the way the server does (`start`, which may run a read inline) and waits for the answer.
    private func started(_ store: StepRunRepository, _ request: StoreRequest, mayBlock: Bool = true) async -> Result<StoreResult, StepRunError> {
        await withCheckedContinuation { continuation in
            let deadline = ContinuousClock.now.advanced(by: .seconds(30))
            _ = mayBlock
                ? store.startInline(request, deadline: deadline) { continuation.resume(returning: $0) }
                : store.start(request, deadline: deadline) { continuation.resume(returning: $0) }
        }
    }

    /// `started` once the pool's only worker is idle, so the call runs inline if it may; throws its error.
    private func startedOnQuietPool(_ store: StepRunRepository, _ pool: PostgresPool, _ request: StoreRequest) async throws -> StoreResult {
        #expect(await eventually { pool.statistics.busy == 0 })
        return try await started(store, request).get()
    }

    /// Records step "a" of `runID`, then starts `read` inline while another session holds an
    /// exclusive lock on the table: the read blocks in Postgres past the inline wait and is handed
    /// to the worker. Returns the pending answer and the locking connection (`COMMIT` releases it).
    private func handedOffRead(
        _ store: StepRunRepository, _ pool: PostgresPool, _ schema: String, _ read: StoreRequest, after runID: UUID
    ) async throws -> (Task<Result<StoreResult, StepRunError>, Never>, PGConnection) {
        _ = try await store.beginStep(runID: runID, step: "a")
        _ = try await store.perform(read, deadline: nil)  // prepares its statement on the only connection
        #expect(await eventually { pool.statistics.busy == 0 })
        let locker = try PGConnection(parameters: pool.configuration.connectionParameters)
        try locker.simpleQuery("BEGIN; LOCK TABLE \(schema).step_runs IN ACCESS EXCLUSIVE MODE", context: "locking")
        let answer = Task { await started(store, read) }
        #expect(await eventually { pool.statistics.inlineReadHandovers == 1 })
        return (answer, locker)
    }

    /// One run with a completed, a failed and a running step, attempts included; every read of it.
    private func populate(_ store: StepRunRepository) async throws -> [StoreRequest] {
        let runID = UUID()
        let (first, _) = try await store.beginStep(runID: runID, step: "first", input: ["n": 1])
        try await store.completeStep(stepRunID: first.id, output: ["total": 42])
        let (second, _) = try await store.beginStep(runID: runID, step: "second")
        let attempt = try await store.beginAttempt(stepRunID: second.id)
        try await store.failAttempt(attemptID: attempt.id, error: ["reason": "timeout"])
        try await store.failStep(stepRunID: second.id, error: ["reason": "gave up"])
        let (third, _) = try await store.beginStep(runID: runID, step: "third")
        return [
            .getStepRun(runID: runID, step: "first"), .getStepRun(runID: runID, step: "missing"),
            .completedSteps(runID: runID), .completedOutputs(runID: runID),
            .completedStepRunsForCompensation(runID: runID), .stepStatuses(runID: runID),
            .attemptCount(stepRunID: second.id), .latestAttempt(stepRunID: second.id),
            .listAttempts(stepRunID: second.id), .latestAttempt(stepRunID: third.id),
        ]
    }

    @Test("a quiet read runs inline and answers exactly as the pooled path does")
    func inlineAnswersMatchPooled() async throws {
        // A wait long enough that reads finish inline even on a loaded machine under ASan (a read that
        // does not is handed off and must still answer the same; that path has tests of its own).
        let (store, pool, schema) = try await isolatedStore(poolSize: 1, inlineReadWait: .seconds(1))
        for request in try await populate(store) {
            // The pooled path first: it also prepares the statement, which an inline read needs.
            let pooled = try await store.perform(request, deadline: nil)
            // Right after an answer the worker may not be idle yet; then the read takes the pooled path.
            var inline: Result<StoreResult, StepRunError>?
            for _ in 0..<200 where inline == nil {
                let before = pool.statistics.inlineReads
                let outcome = await started(store, request)
                if pool.statistics.inlineReads > before { inline = outcome } else { try await Task.sleep(for: .milliseconds(1)) }
            }
            #expect(try inline?.get() == pooled, "\(request.operationName)")
        }
        await pool.shutdown()
        try await drop(schema)
    }

    @Test("writes run inline only when small begin_step / complete_step calls, and only with inline-write-wait on")
    func writesInlineOnlyWhenAllowed() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1, inlineReadWait: .milliseconds(50))
        _ = try await startedOnQuietPool(store, pool, .beginStep(runID: UUID(), step: "s", input: .empty, recovery: nil))
        #expect(pool.statistics.inlineReads == 0 && pool.statistics.inlineWrites == 0)
        await pool.shutdown()
        try await drop(schema)

        let (writer, writerPool, writerSchema) = try await isolatedStore(poolSize: 1, inlineReadWait: .zero, inlineWriteWait: .seconds(1))
        let runID = UUID()
        _ = try await writer.beginStep(runID: runID, step: "prepared")  // prepares begin_step on the only connection
        _ = try await writer.scheduleStep(runID: runID, step: "also-prepared")
        let big = JSONPayload(["pad": .string(String(repeating: "x", count: 5_000))])
        _ = try await startedOnQuietPool(writer, writerPool, .scheduleStep(runID: runID, step: "x", input: .empty, recovery: nil))
        _ = try await startedOnQuietPool(writer, writerPool, .beginStep(runID: runID, step: "big", input: big, recovery: nil))
        #expect(writerPool.statistics.inlineWrites == 0)
        _ = try await startedOnQuietPool(writer, writerPool, .beginStep(runID: runID, step: "small", input: .empty, recovery: nil))
        #expect(writerPool.statistics.inlineWrites == 1)
        await writerPool.shutdown()
        try await drop(writerSchema)
    }

    @Test("a quiet begin_step and complete_step run inline and answer exactly as the pooled path does")
    func inlineWritesMatchPooled() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1, inlineReadWait: .zero, inlineWriteWait: .seconds(1))
        let runID = UUID()
        // Prepares both statements on the only connection (an inline call needs them prepared).
        let (prepared, _) = try await store.beginStep(runID: runID, step: "prepared")
        try await store.completeStep(stepRunID: prepared.id, output: .empty)
        /// Runs `request` inline and checks that it did.
        func inline(_ request: StoreRequest) async throws -> StoreResult {
            let before = pool.statistics.inlineWrites
            defer { #expect(pool.statistics.inlineWrites == before + 1, "\(request.operationName) did not run inline") }
            return try await startedOnQuietPool(store, pool, request)
        }
        let begin = StoreRequest.beginStep(runID: runID, step: "a", input: ["n": 1], recovery: nil)
        guard case .begin(let claimed, .execute) = try await inline(begin) else {
            Issue.record("the inline claim was not executed")
            return
        }
        // The second delivery is skipped, with the same row either way.
        let pooledSkip = try await store.perform(begin, deadline: nil)
        #expect(try await inline(begin) == pooledSkip)
        guard case .begin(let row, .skip) = pooledSkip else {
            Issue.record("expected a skip, got \(pooledSkip)")
            return
        }
        #expect(row == claimed)

        let complete = StoreRequest.completeStep(stepRunID: claimed.id, output: ["total": 42])
        guard case .stepRun(let completed) = try await inline(complete) else {
            Issue.record("the inline completion returned no step run")
            return
        }
        #expect(completed.status == .completed && completed.output == ["total": 42])
        #expect(try await store.getStepRun(runID: runID, step: "a") == completed)
        // Completing it again is refused the same way on both paths.
        let pooledError = await storeError { _ = try await store.perform(complete, deadline: nil) }
        let inlineError = await storeError { _ = try await inline(complete) }
        #expect(pooledError != nil && inlineError?.code == pooledError?.code && inlineError?.message == pooledError?.message)
        await pool.shutdown()
        try await drop(schema)
    }

    @Test("an inline write still unanswered after the inline wait is finished by the worker and answered once")
    func slowInlineWriteIsHandedOff() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1, inlineReadWait: .zero, inlineWriteWait: .milliseconds(50))
        let runID = UUID()
        let (prepared, _) = try await store.beginStep(runID: runID, step: "prepared")
        try await store.completeStep(stepRunID: prepared.id, output: .empty)
        let (row, _) = try await store.beginStep(runID: runID, step: "a")
        #expect(await eventually { pool.statistics.busy == 0 })
        // Another session holds the row's lock, so the completion waits in Postgres past the inline wait.
        let locker = try PGConnection(parameters: pool.configuration.connectionParameters)
        try locker.simpleQuery("BEGIN; SELECT 1 FROM \(schema).step_runs WHERE id = '\(row.id.uuidString)' FOR UPDATE", context: "locking")
        let answer = Task { await started(store, .completeStep(stepRunID: row.id, output: ["late": true])) }
        #expect(await eventually { pool.statistics.inlineWriteHandovers == 1 })
        try locker.simpleQuery("COMMIT", context: "unlocking")
        guard case .success(.stepRun(let completed)) = await answer.value else {
            Issue.record("the handed-off completion failed")
            return
        }
        #expect(completed.status == .completed && completed.output == ["late": true])
        #expect(pool.statistics.inlineWrites == 1)
        await pool.shutdown()
        try await drop(schema)
    }

    @Test("a read whose caller has more requests in hand (started without startInline) takes the pool even when it is quiet")
    func readsWithOthersWaitingTakeThePool() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1, inlineReadWait: .seconds(1))
        let runID = UUID()
        _ = try await store.beginStep(runID: runID, step: "a")
        for _ in 0..<20 {
            #expect(await eventually { pool.statistics.busy == 0 })
            #expect(try await started(store, .stepStatuses(runID: runID), mayBlock: false).get() == .statuses(["a": .running]))
        }
        #expect(pool.statistics.inlineReads == 0)
        // The same read from a caller with nothing else waiting runs inline (once the worker is idle).
        for _ in 0..<200 where pool.statistics.inlineReads == 0 {
            _ = await started(store, .stepStatuses(runID: runID), mayBlock: true)
            try await Task.sleep(for: .milliseconds(1))
        }
        #expect(pool.statistics.inlineReads == 1)
        await pool.shutdown()
        try await drop(schema)
    }

    @Test("a read still unanswered after the inline wait is finished by the connection's worker")
    func slowInlineReadIsHandedOff() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1, inlineReadWait: .microseconds(200))
        let runID = UUID()
        let (answer, locker) = try await handedOffRead(store, pool, schema, .stepStatuses(runID: runID), after: runID)
        defer { locker.close() }
        #expect(pool.statistics.busy == 1, "the worker finishes the read and stays busy meanwhile")
        // A call arriving meanwhile queues behind the unfinished read instead of using its connection.
        async let write = store.beginStep(runID: runID, step: "b")
        #expect(await eventually { pool.statistics.waiting == 1 })

        try locker.simpleQuery("COMMIT", context: "unlocking")
        #expect(try await answer.value.get() == .statuses(["a": .running]))
        #expect(try await write.1 == .execute)
        #expect(try await store.stepStatuses(runID: runID) == ["a": .running, "b": .running])
        #expect(pool.statistics.inlineReads == 1)
        await pool.shutdown()
        try await drop(schema)
    }

    @Test("shutting down while a handed-off read is unfinished still answers it")
    func shutdownWaitsForHandedOffRead() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 1, inlineReadWait: .microseconds(200))
        let runID = UUID()
        let (answer, locker) = try await handedOffRead(store, pool, schema, .getStepRun(runID: runID, step: "a"), after: runID)
        defer { locker.close() }

        let shutdown = Task { await pool.shutdown() }
        try await Task.sleep(for: .milliseconds(50))
        try locker.simpleQuery("COMMIT", context: "unlocking")
        guard case .success(.foundStepRun(let found)) = await answer.value else {
            Issue.record("the handed-off read was not answered")
            return
        }
        #expect(found?.step == "a")
        await shutdown.value
        try await drop(schema)
    }

    @Test("after Postgres restarts, the first quiet read succeeds: a dead idle connection is not lent, the worker reconnects")
    func firstReadAfterRestartSucceeds() async throws {
        let scratch = try await ScratchPostgres.create()
        let pool = PostgresPool(
            configuration: PostgresConfiguration(connectionString: scratch.url, poolSize: 1, inlineReadWait: .milliseconds(50)),
            logger: TestDatabase.logger)
        try await SchemaMigrator.migrate(pool: pool, logger: TestDatabase.logger)
        let store = StepRunRepository(pool: pool)
        let runID = UUID()
        _ = try await store.beginStep(runID: runID, step: "a")
        _ = try await store.perform(.stepStatuses(runID: runID), deadline: nil)
        #expect(await eventually { pool.statistics.busy == 0 })

        try await scratch.stop()
        try await scratch.start()
        #expect(try await started(store, .stepStatuses(runID: runID)).get() == .statuses(["a": .running]))
        await pool.shutdown()
        await scratch.destroy()
    }

    @Test("many concurrent readers and writers with inline reads: each sees its own writes, none fails")
    func concurrentReadsAndWrites() async throws {
        let (store, pool, schema) = try await isolatedStore(poolSize: 2, inlineReadWait: .microseconds(200))
        let runID = UUID()
        let failures = await withTaskGroup(of: String?.self) { group in
            for index in 0..<32 {
                group.addTask {
                    do {
                        let step = "step-\(index)"
                        for round in 0..<10 {
                            // Reads arrive the way the server sends them, often onto a quiet pool.
                            let before = await self.started(store, .getStepRun(runID: runID, step: step))
                            guard case .success(.foundStepRun(let found)) = before else { return "\(step): \(before)" }
                            if round == 0 {
                                guard found == nil else { return "\(step) existed before it began" }
                                let (stepRun, decision) = try await store.beginStep(runID: runID, step: step)
                                guard decision == .execute else { return "\(step) not claimed" }
                                try await store.completeStep(stepRunID: stepRun.id, output: ["index": .int(Int64(index))])
                            } else if found?.status != .completed {
                                return "\(step) read back as \(String(describing: found?.status))"
                            }
                            let statuses = await self.started(store, .stepStatuses(runID: runID))
                            guard case .success(.statuses(let all, _)) = statuses, all[step] == .completed else {
                                return "\(step) missing from \(statuses)"
                            }
                        }
                        return nil
                    } catch {
                        return "\(error)"
                    }
                }
            }
            return await group.reduce(into: [String]()) { if let failure = $1 { $0.append(failure) } }
        }
        // How many reads found the pool quiet depends on timing (most do as tasks start and finish);
        // what must hold is that mixing inline and pooled work loses or confuses nothing.
        #expect(failures.isEmpty, "\(failures.prefix(5))")
        #expect(try await store.completedSteps(runID: runID).count == 32)
        await pool.shutdown()
        try await drop(schema)
    }
}
