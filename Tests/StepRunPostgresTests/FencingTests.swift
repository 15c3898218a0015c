import Foundation
import StepRunCore
import StepRunPostgres
import Testing
import StepRunTesting

@Suite("Finishing a running step")
struct FencingTests {
    private func running(_ store: StepRunRepository, step: String = "s") async throws -> (UUID, StepRun) {
        let runID = UUID()
        let (stepRun, decision) = try await store.beginStep(runID: runID, step: step, input: ["in": 1])
        try #require(decision == .execute)
        return (runID, stepRun)
    }

    @Test("complete_step sets output and completed_at and clears manual, resume and last_error")
    func completeStepRecordsOutput() async throws {
        let store = try await TestDatabase.repository()
        let (_, stepRun) = try await running(store)
        try await store.persistPauseResume(stepRunID: stepRun.id, output: ["partial": true], target: .complete)
        let completed = try await store.completeStep(stepRunID: stepRun.id, output: ["total": 42])
        #expect(completed.status == .completed)
        #expect(try completed.output?.object == ["total": 42])
        #expect(completed.completedAt != nil)
        #expect(completed.resume == nil)
        #expect(completed.manual == nil)
        #expect(completed.lastError == nil)
        #expect(completed.updatedAt > stepRun.updatedAt)
    }

    @Test("stale terminal updates after completion fail with the current status and leave the output as it was")
    func staleUpdatesAfterCompletionChangeNothing() async throws {
        let store = try await TestDatabase.repository()
        let (runID, stepRun) = try await running(store)
        let completed = try await store.completeStep(stepRunID: stepRun.id, output: ["first": true])

        let attempts: [@Sendable () async throws -> Void] = [
            { _ = try await store.completeStep(stepRunID: stepRun.id, output: ["second": true]) },
            { _ = try await store.failStep(stepRunID: stepRun.id, error: ["late": true]) },
            { _ = try await store.completeManualStep(stepRunID: stepRun.id, output: ["m": 1], manual: ["by": "ops"]) },
            { _ = try await store.persistPauseResume(stepRunID: stepRun.id, output: [:], target: .step("next")) },
            { _ = try await store.persistApprovalResume(stepRunID: stepRun.id, okTarget: .complete, errorTarget: .step("e")) },
        ]
        for attempt in attempts {
            let error = await storeError(attempt)
            #expect(error == .staleStepRun(status: .completed))
            #expect(error?.code == .failedPrecondition)
        }
        let stored = try await store.getStepRun(runID: runID, step: "s")
        #expect(stored == completed)
    }

    @Test("64 concurrent complete_step calls on one running step: exactly one succeeds")
    func concurrentCompletionsHaveOneWinner() async throws {
        let store = try await TestDatabase.repository()
        let (runID, stepRun) = try await running(store)
        let outcomes = await withTaskGroup(of: Result<Int, StepRunError>.self) { group in
            for worker in 0..<64 {
                group.addTask {
                    do {
                        _ = try await store.completeStep(stepRunID: stepRun.id, output: ["worker": .int(Int64(worker))])
                        return .success(worker)
                    } catch let error as StepRunError {
                        return .failure(error)
                    } catch {
                        return .failure(.internal("\(error)"))
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        let winners = outcomes.compactMap { try? $0.get() }
        #expect(winners.count == 1)
        #expect(outcomes.filter { if case .failure(.staleStepRun(.completed)) = $0 { true } else { false } }.count == 63)
        let stored = try #require(try await store.getStepRun(runID: runID, step: "s"))
        #expect(try stored.output?.object == ["worker": .int(Int64(winners[0]))])
    }

    @Test("fail_step records last_error and clears manual and resume")
    func failStepRecordsError() async throws {
        let store = try await TestDatabase.repository()
        let (_, stepRun) = try await running(store)
        try await store.persistPauseResume(stepRunID: stepRun.id, output: ["x": 1], target: .step("next"))
        let failed = try await store.failStep(stepRunID: stepRun.id, error: ["reason": "boom"])
        #expect(failed.status == .failed)
        #expect(try failed.lastError?.object == ["reason": "boom"])
        #expect(failed.resume == nil)
        #expect(failed.completedAt == nil)
    }

    @Test("complete_manual_step records the manual action and completes")
    func completeManualStepRecordsManual() async throws {
        let store = try await TestDatabase.repository()
        let (_, stepRun) = try await running(store)
        let completed = try await store.completeManualStep(
            stepRunID: stepRun.id, output: ["approved": true], manual: ["actor": "alice", "action": "approve"])
        #expect(completed.status == .completed)
        #expect(try completed.manual?.object == ["actor": "alice", "action": "approve"])
        #expect(try completed.output?.object == ["approved": true])
        #expect(completed.completedAt != nil)
    }

    @Test("persist_pause_resume stores output and target without changing status")
    func pauseResumeShape() async throws {
        let store = try await TestDatabase.repository()
        let (_, stepRun) = try await running(store)
        let paused = try await store.persistPauseResume(stepRunID: stepRun.id, output: ["a": 1], target: .step("review"))
        #expect(paused.status == .running)
        #expect(try paused.resume?.object == ["output": ["a": 1], "target": "review"])
        let toEnd = try await store.persistPauseResume(stepRunID: stepRun.id, output: [:], target: .complete)
        #expect(try toEnd.resume?.object == ["output": [:], "target": "__complete__"])
    }

    @Test("persist_approval_resume stores both targets and the output key")
    func approvalResumeShape() async throws {
        let store = try await TestDatabase.repository()
        let (_, stepRun) = try await running(store)
        let approval = try await store.persistApprovalResume(
            stepRunID: stepRun.id, okTarget: .step("ship"), errorTarget: .complete, outputKey: "decision")
        #expect(approval.status == .running)
        #expect(try approval.resume?.object == [
            "kind": "approval", "ok_target": "ship", "error_target": "__complete__", "output_key": "decision",
        ])
        let noKey = try await store.persistApprovalResume(stepRunID: stepRun.id, okTarget: .complete, errorTarget: .complete)
        #expect(try noKey.resume?.object["output_key"] == .null)
    }

    @Test("record_failure_recovery merges into recovery on a failed step only")
    func failureRecoveryOnlyOnFailed() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let (stepRun, _) = try await store.beginStep(runID: runID, step: "s", recovery: ["keep": "me"])
        let early = await storeError {
            _ = try await store.recordFailureRecovery(stepRunID: stepRun.id, strategy: .undo, target: "s")
        }
        #expect(early == .staleStepRun(status: .running))

        try await store.failStep(stepRunID: stepRun.id, error: ["e": 1])
        let recorded = try await store.recordFailureRecovery(stepRunID: stepRun.id, strategy: .compensation, target: "refund")
        #expect(try recorded.recovery?.object == ["keep": "me", "failure": ["strategy": "compensation", "target": "refund"]])
        #expect(recorded.status == .failed)
    }

    @Test("update_recovery replaces recovery in any status without touching status or completion time")
    func updateRecoveryInAnyStatus() async throws {
        let store = try await TestDatabase.repository()
        let (_, stepRun) = try await running(store)
        let completed = try await store.completeStep(stepRunID: stepRun.id, output: [:])
        let updated = try await store.updateRecovery(stepRunID: stepRun.id, recovery: ["callback": "running"])
        #expect(updated.status == .completed)
        #expect(updated.completedAt == completed.completedAt)
        #expect(try updated.recovery?.object == ["callback": "running"])
    }

    @Test("fenced updates and update_recovery on an unknown id are NOT_FOUND")
    func unknownStepRunIsNotFound() async throws {
        let store = try await TestDatabase.repository()
        let missing = UUID()
        let calls: [@Sendable () async throws -> Void] = [
            { _ = try await store.completeStep(stepRunID: missing, output: [:]) },
            { _ = try await store.failStep(stepRunID: missing, error: [:]) },
            { _ = try await store.updateRecovery(stepRunID: missing, recovery: [:]) },
            { _ = try await store.recordFailureRecovery(stepRunID: missing, strategy: .undo, target: "x") },
            { _ = try await store.beginAttempt(stepRunID: missing) },
            { _ = try await store.listAttempts(stepRunID: missing) },
        ]
        for call in calls {
            let error = await storeError(call)
            #expect(error?.code == .notFound)
        }
    }
}
