import Foundation
import StepRunCore
import StepRunPostgres
import Testing
import StepRunTesting

@Suite("Claiming and scheduling")
struct ClaimingTests {
    @Test("64 concurrent begin_step calls on one step: exactly one execute, 63 skips, one id")
    func concurrentBeginStepHasOneWinner() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let results = try await withThrowingTaskGroup(of: (StepRun, BeginDecision).self) { group in
            for delivery in 0..<64 {
                group.addTask {
                    try await store.beginStep(runID: runID, step: "charge", input: ["delivery": .int(Int64(delivery))])
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 64)
        #expect(results.filter { $0.1 == .execute }.count == 1)
        #expect(results.filter { $0.1 == .skip }.count == 63)
        #expect(Set(results.map(\.0.id)).count == 1)
        #expect(results.allSatisfy { $0.0.status == .running })
    }

    @Test("schedule, duplicate schedule skips, claim executes with the scheduled input, duplicate claim skips")
    func scheduleThenClaim() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let (scheduled, decision) = try await store.scheduleStep(
            runID: runID, step: "ship", input: ["from": "schedule"], recovery: ["policy": "retry"])
        #expect(decision == .schedule)
        #expect(scheduled.status == .pending)

        let (again, againDecision) = try await store.scheduleStep(runID: runID, step: "ship", input: ["from": "again"])
        #expect(againDecision == .skip)
        #expect(again.id == scheduled.id)
        #expect(try again.input.object == ["from": "schedule"])

        let (claimed, claim) = try await store.beginStep(runID: runID, step: "ship", input: ["from": "claim"], recovery: ["policy": "other"])
        #expect(claim == .execute)
        #expect(claimed.id == scheduled.id)
        #expect(claimed.status == .running)
        #expect(try claimed.input.object == ["from": "schedule"])
        #expect(try claimed.recovery?.object == ["policy": "retry"])

        let (_, duplicate) = try await store.beginStep(runID: runID, step: "ship", input: ["from": "duplicate"])
        #expect(duplicate == .skip)
    }

    @Test("a failed step is re-claimed by begin_step with the new input and recovery")
    func failedStepIsReclaimedWithNewInput() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let (first, _) = try await store.beginStep(runID: runID, step: "charge", input: ["try": 1], recovery: ["r": 1])
        try await store.failStep(stepRunID: first.id, error: ["reason": "card declined"])

        let (retry, decision) = try await store.beginStep(runID: runID, step: "charge", input: ["try": 2], recovery: ["r": 2])
        #expect(decision == .execute)
        #expect(retry.id == first.id)
        #expect(retry.status == .running)
        #expect(try retry.input.object == ["try": 2])
        #expect(try retry.recovery?.object == ["r": 2])
        #expect(retry.lastError == nil)
        #expect(retry.output == nil)
        #expect(retry.resume == nil)
    }

    @Test("begin_step on a completed step skips and leaves it unchanged")
    func completedStepIsNotReclaimed() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let (stepRun, _) = try await store.beginStep(runID: runID, step: "s")
        let completed = try await store.completeStep(stepRunID: stepRun.id, output: ["done": true])
        let (again, decision) = try await store.beginStep(runID: runID, step: "s", input: ["new": true])
        #expect(decision == .skip)
        #expect(again == completed)
    }

    @Test("64 concurrent schedule_step calls: exactly one schedules")
    func concurrentScheduleHasOneWinner() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let decisions = try await withThrowingTaskGroup(of: ScheduleDecision.self) { group in
            for _ in 0..<64 {
                group.addTask { try await store.scheduleStep(runID: runID, step: "fan").1 }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(decisions.filter { $0 == .schedule }.count == 1)
    }

    @Test("schedule_steps schedules new steps in the order given and skips existing ones")
    func scheduleStepsReportsNewStepsInOrder() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        _ = try await store.beginStep(runID: runID, step: "b")
        let scheduled = try await store.scheduleSteps(runID: runID, steps: [
            ScheduledStep(step: "c", input: ["n": 3]),
            ScheduledStep(step: "b"),
            ScheduledStep(step: "a", input: ["n": 1], recovery: ["undo": "a"]),
        ])
        #expect(scheduled == ["c", "a"])
        let statuses = try await store.stepStatuses(runID: runID)
        #expect(statuses == ["a": .pending, "b": .running, "c": .pending])
        let a = try #require(try await store.getStepRun(runID: runID, step: "a"))
        #expect(try a.recovery?.object == ["undo": "a"])
    }

    @Test("schedule_steps naming a step twice is refused and schedules nothing")
    func scheduleStepsIsAtomic() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let error = await storeError {
            _ = try await store.scheduleSteps(runID: runID, steps: [ScheduledStep(step: "x"), ScheduledStep(step: "y"), ScheduledStep(step: "x")])
        }
        guard case .invalidArgument(let field, _) = error else {
            Issue.record("expected invalidArgument, got \(String(describing: error))")
            return
        }
        #expect(field == "steps[2].step")
        #expect(try await store.stepStatuses(runID: runID).isEmpty)
    }

    @Test("delete_pending_steps deletes only pending rows")
    func deletePendingStepsLeavesOthers() async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        _ = try await store.scheduleSteps(runID: runID, steps: ["p1", "p2", "r"].map { ScheduledStep(step: $0) })
        _ = try await store.beginStep(runID: runID, step: "r")
        let deleted = try await store.deletePendingSteps(runID: runID, steps: ["p1", "p2", "r", "missing"])
        #expect(deleted == 2)
        #expect(try await store.stepStatuses(runID: runID) == ["r": .running])
    }
}
