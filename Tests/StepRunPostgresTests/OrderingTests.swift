import Foundation
import StepRunCore
import StepRunPostgres
import Testing
import StepRunTesting

@Suite("Reading a run in order")
struct OrderingTests {
    @Test("fan-out: completion order, not insertion order, drives completed_steps and completed_outputs")
    func completionOrderDrivesReads() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let steps = ["a", "b", "c", "d", "e"]
        _ = try await store.scheduleSteps(runID: runID, steps: steps.map { ScheduledStep(step: $0) })
        var ids: [String: UUID] = [:]
        for step in steps {
            ids[step] = try await store.beginStep(runID: runID, step: step).0.id
        }
        let completionOrder = ["c", "a", "e", "b", "d"]
        for step in completionOrder {
            try await store.completeStep(stepRunID: ids[step]!, output: ["winner": .string(step), step: true])
        }
        #expect(try await store.completedSteps(runID: runID) == completionOrder)
        let outputs = try await store.completedOutputs(runID: runID).map { try $0.object }
        #expect(outputs == completionOrder.map { ["winner": .string($0), $0: true] })
    }

    @Test("completed_outputs reads a completed step's missing output as {}")
    func missingOutputReadsAsEmptyObject() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let (stepRun, _) = try await store.beginStep(runID: runID, step: "s")
        try await store.completeStep(stepRunID: stepRun.id, output: [:])
        #expect(try await store.completedOutputs(runID: runID).map { try $0.object } == [[:]])
        #expect(try await store.completedSteps(runID: UUID()).isEmpty)
    }

    @Test("compensation order is newest-completed-first and does not move after update_recovery")
    func compensationOrderIsStable() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        var ids: [UUID] = []
        for step in ["reserve", "charge", "ship"] {
            let (stepRun, _) = try await store.beginStep(runID: runID, step: step)
            try await store.completeStep(stepRunID: stepRun.id, output: [:])
            ids.append(stepRun.id)
        }
        let (pending, _) = try await store.beginStep(runID: runID, step: "notify")
        _ = pending
        let order = try await store.completedStepRunsForCompensation(runID: runID).map(\.step)
        #expect(order == ["ship", "charge", "reserve"])

        try await store.updateRecovery(stepRunID: ids[0], recovery: ["compensation": "running"])
        try await store.updateRecovery(stepRunID: ids[2], recovery: ["compensation": "completed"])
        let after = try await store.completedStepRunsForCompensation(runID: runID).map(\.step)
        #expect(after == ["ship", "charge", "reserve"])
    }

    @Test("compensation order follows the latest completed attempt when attempts were recorded")
    func compensationOrderUsesAttempts() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let (first, _) = try await store.beginStep(runID: runID, step: "first")
        let (second, _) = try await store.beginStep(runID: runID, step: "second")
        let firstAttempt = try await store.beginAttempt(stepRunID: first.id)
        let secondAttempt = try await store.beginAttempt(stepRunID: second.id)
        try await store.completeAttempt(attemptID: firstAttempt.id)
        try await store.completeAttempt(attemptID: secondAttempt.id)
        // Step rows complete in the opposite order to their attempts.
        try await store.completeStep(stepRunID: second.id, output: [:])
        try await store.completeStep(stepRunID: first.id, output: [:])
        let order = try await store.completedStepRunsForCompensation(runID: runID).map(\.step)
        #expect(order == ["second", "first"])
    }

    @Test("step_statuses lists every persisted step of the run")
    func stepStatusesListsEveryStep() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        _ = try await store.scheduleStep(runID: runID, step: "p")
        let (r, _) = try await store.beginStep(runID: runID, step: "r")
        let (c, _) = try await store.beginStep(runID: runID, step: "c")
        let (f, _) = try await store.beginStep(runID: runID, step: "f")
        try await store.completeStep(stepRunID: c.id, output: [:])
        try await store.failStep(stepRunID: f.id, error: [:])
        _ = r
        #expect(try await store.stepStatuses(runID: runID) == ["p": .pending, "r": .running, "c": .completed, "f": .failed])
    }

    @Test("get_step_run returns nil for an unknown step")
    func getStepRunMissingIsNil() async throws {
        let store = try await TestDatabase.repository()
        #expect(try await store.getStepRun(runID: UUID(), step: "nothing") == nil)
    }
}
