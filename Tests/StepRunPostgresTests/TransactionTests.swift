import Foundation
import StepRunCore
import StepRunPostgres
import Testing
import StepRunTesting

@Suite("Atomic groups and run maintenance")
struct TransactionTests {
    @Test("a transaction whose third operation is stale applies nothing and names index 2")
    func staleThirdOperationRollsBackEverything() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let (done, _) = try await store.beginStep(runID: runID, step: "done")
        try await store.completeStep(stepRunID: done.id, output: ["kept": true])
        let (open, _) = try await store.beginStep(runID: runID, step: "open")
        let attempt = try await store.beginAttempt(stepRunID: open.id)

        let error = await storeError {
            _ = try await store.transaction([
                .completeAttempt(attemptID: attempt.id),
                .completeStep(stepRunID: open.id, output: ["n": 1]),
                .completeStep(stepRunID: done.id, output: ["overwritten": true]),
                .scheduleStep(runID: runID, step: "later", input: .empty, recovery: nil),
            ])
        }
        #expect(error == .transactionFailed(index: 2, cause: .staleStepRun(status: .completed)))
        #expect(error?.code == .failedPrecondition)

        #expect(try await store.getStepRun(runID: runID, step: "open")?.status == .running)
        #expect(try await store.latestAttempt(stepRunID: open.id)?.status == .running)
        #expect(try await store.getStepRun(runID: runID, step: "later") == nil)
        #expect(try await store.getStepRun(runID: runID, step: "done")?.output == ["kept": true])
    }

    @Test("a transaction applies every operation and returns each result in order")
    func transactionAppliesAll() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let (stepRun, _) = try await store.beginStep(runID: runID, step: "s")
        let attempt = try await store.beginAttempt(stepRunID: stepRun.id)
        let results = try await store.transaction([
            .completeAttempt(attemptID: attempt.id),
            .completeStep(stepRunID: stepRun.id, output: ["ok": true]),
            .scheduleSteps(runID: runID, steps: [ScheduledStep(step: "next")]),
        ])
        #expect(results.count == 3)
        guard case .attempt(let completedAttempt) = results[0], case .stepRun(let completed) = results[1],
            case .scheduledSteps(let scheduled) = results[2]
        else {
            Issue.record("unexpected results \(results)")
            return
        }
        #expect(completedAttempt.status == .completed)
        #expect(completed.status == .completed)
        #expect(scheduled == ["next"])
    }

    @Test("a transaction refuses read operations and names the index")
    func transactionRefusesReads() async throws {
        let store = try await TestDatabase.repository()
        let error = await storeError {
            _ = try await store.transaction([.scheduleStep(runID: UUID(), step: "a", input: .empty, recovery: nil), .completedSteps(runID: UUID())])
        }
        guard case .transactionFailed(1, .invalidArgument(let field, _)) = error else {
            Issue.record("expected transactionFailed(1, invalidArgument), got \(String(describing: error))")
            return
        }
        #expect(field == "operations[1]")
    }

    @Test("purge_run deletes the run's step runs and attempts and nothing else")
    func purgeRunDeletesOnlyThatRun() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let otherRun = UUID()
        for step in ["a", "b"] {
            let (stepRun, _) = try await store.beginStep(runID: runID, step: step)
            _ = try await store.beginAttempt(stepRunID: stepRun.id)
            _ = try await store.beginAttempt(stepRunID: stepRun.id)
        }
        _ = try await store.beginStep(runID: otherRun, step: "a")
        let counts = try await store.purgeRun(runID: runID)
        #expect(counts == PurgeCounts(stepRuns: 2, attempts: 4))
        #expect(try await store.stepStatuses(runID: runID).isEmpty)
        #expect(try await store.stepStatuses(runID: otherRun) == ["a": .running])
        #expect(try await store.purgeRun(runID: runID) == PurgeCounts(stepRuns: 0, attempts: 0))
    }
}
