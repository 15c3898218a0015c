import Foundation
import StepRunClient
import StepRunCore
import Testing
import StepRunTesting

@Suite("Every operation through the client")
struct OperationsTests {
    @Test("claiming, finishing, reading and maintenance round-trip through the daemon", arguments: Transport.allCases)
    func everyOperation(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(transport)
        defer { Task { await client.close() } }
        let runID = UUID()

        let hello = try await client.connect()
        #expect(hello.protocolVersion == 2)
        #expect(hello.maxPayloadBytes == 1 << 20)

        // 1–4: claiming and scheduling
        let (scheduled, scheduleDecision) = try await client.scheduleStep(runID: runID, step: "review", input: ["doc": 7])
        #expect(scheduleDecision == .schedule)
        #expect(try await client.scheduleStep(runID: runID, step: "review").1 == .skip)
        #expect(try await client.scheduleSteps(runID: runID, steps: [ScheduledStep(step: "fan-a"), ScheduledStep(step: "fan-b"), ScheduledStep(step: "review")]) == ["fan-a", "fan-b"])
        #expect(try await client.deletePendingSteps(runID: runID, steps: ["fan-b"]) == 1)
        let (claimed, decision) = try await client.beginStep(runID: runID, step: "review", input: ["ignored": true])
        #expect(decision == .execute)
        #expect(claimed.id == scheduled.id)
        #expect(try claimed.input.object == ["doc": 7])

        // 8, 9, 6: pause, approval, manual completion
        let paused = try await client.persistPauseResume(stepRunID: claimed.id, output: ["partial": 1], target: .step("approve"))
        #expect(try paused.resume?.object == ["output": ["partial": 1], "target": "approve"])
        let approval = try await client.persistApprovalResume(stepRunID: claimed.id, okTarget: .complete, errorTarget: .step("reject"), outputKey: "verdict")
        #expect(try approval.resume?.object["kind"] == "approval")
        let manual = try await client.completeManualStep(stepRunID: claimed.id, output: ["verdict": "ok"], manual: ["by": "alice"])
        #expect(manual.status == .completed)

        // 5, 7, 10, 11: complete, fail, failure recovery, recovery updates
        let (charge, _) = try await client.beginStep(runID: runID, step: "charge", recovery: ["undo": "refund"])
        let completed = try await client.completeStep(stepRunID: charge.id, output: ["receipt": "r-1"])
        #expect(completed.completedAt != nil)
        let (ship, _) = try await client.beginStep(runID: runID, step: "ship")
        let failed = try await client.failStep(stepRunID: ship.id, error: ["reason": "no stock"])
        #expect(failed.status == .failed)
        let recovery = try await client.recordFailureRecovery(stepRunID: ship.id, strategy: .compensation, target: "charge")
        #expect(try recovery.recovery?.object["failure"] == ["strategy": "compensation", "target": "charge"])
        let marked = try await client.updateRecovery(stepRunID: charge.id, recovery: ["undo": "refund", "state": "running"])
        #expect(marked.status == .completed)

        // 12–16: reads
        #expect(try await client.getStepRun(runID: runID, step: "charge") == marked)
        #expect(try await client.getStepRun(runID: runID, step: "nope") == nil)
        #expect(try await client.completedSteps(runID: runID) == ["review", "charge"])
        #expect(try await client.completedOutputs(runID: runID).map { try $0.object } == [["verdict": "ok"], ["receipt": "r-1"]])
        #expect(try await client.completedStepRunsForCompensation(runID: runID).map(\.step) == ["charge", "review"])
        #expect(try await client.stepStatuses(runID: runID) == ["review": .completed, "charge": .completed, "ship": .failed, "fan-a": .pending])

        // 17–21: attempts
        let (retry, retryDecision) = try await client.beginStep(runID: runID, step: "ship", input: ["again": true])
        #expect(retryDecision == .execute)
        let first = try await client.beginAttempt(stepRunID: retry.id)
        try await client.failAttempt(attemptID: first.id, error: ["timeout": true])
        let second = try await client.beginAttempt(stepRunID: retry.id)
        #expect(second.attemptNumber == 2)
        try await client.completeAttempt(attemptID: second.id)
        try await client.recordAttempt(stepRunID: retry.id, attemptNumber: 5, status: .failed, error: ["late": true])
        #expect(try await client.attemptCount(stepRunID: retry.id) == 3)
        #expect(try await client.latestAttempt(stepRunID: retry.id)?.attemptNumber == 5)
        #expect(try await client.listAttempts(stepRunID: retry.id).map(\.status) == [.failed, .completed, .failed])

        // 23: transaction
        let third = try await client.beginAttempt(stepRunID: retry.id)
        let results = try await client.transaction([
            .completeAttempt(attemptID: third.id), .completeStep(stepRunID: retry.id, output: ["shipped": true]),
        ])
        #expect(results.count == 2)
        #expect(try await client.getStepRun(runID: runID, step: "ship")?.status == .completed)

        // 22: purge
        let counts = try await client.purgeRun(runID: runID)
        #expect(counts == PurgeCounts(stepRuns: 4, attempts: 4))
        #expect(try await client.stepStatuses(runID: runID).isEmpty)
    }

    @Test("errors arrive as the same typed StepRunError cases", arguments: Transport.allCases)
    func typedErrors(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(transport)
        defer { Task { await client.close() } }
        let runID = UUID()
        let (stepRun, _) = try await client.beginStep(runID: runID, step: "s")
        try await client.completeStep(stepRunID: stepRun.id, output: [:])

        #expect(await storeError { try await client.completeStep(stepRunID: stepRun.id, output: [:]) } == .staleStepRun(status: .completed))
        #expect(await storeError { try await client.failStep(stepRunID: UUID(), error: [:]) }?.code == .notFound)
        let attempt = try await client.recordAttempt(stepRunID: stepRun.id, attemptNumber: 1, status: .completed)
        #expect(await storeError { try await client.recordAttempt(stepRunID: stepRun.id, attemptNumber: 1, status: .failed) }?.code == .alreadyExists)
        #expect(await storeError { try await client.failAttempt(attemptID: attempt.id, error: [:]) } == .staleAttempt(status: .completed))
        guard case .invalidArgument(let field, _)? = await storeError({ _ = try await client.beginStep(runID: runID, step: "") }) else {
            Issue.record("expected invalidArgument")
            return
        }
        #expect(field == "step")
        let failure = await storeError {
            _ = try await client.transaction([
                .scheduleStep(runID: runID, step: "t", input: .empty, recovery: nil),
                .completeStep(stepRunID: stepRun.id, output: [:]),
            ])
        }
        #expect(failure == .transactionFailed(index: 1, cause: .staleStepRun(status: .completed)))
        #expect(try await client.getStepRun(runID: runID, step: "t") == nil)
    }

    @Test("health reports the daemon serving and the database reachable", arguments: Transport.allCases)
    func health(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(transport)
        defer { Task { await client.close() } }
        let health = try await client.health()
        #expect(health.serving)
        #expect(health.databaseLatencyMicros >= 0)
    }

    @Test("a payload of 1 MiB as stored round-trips; one byte more is refused naming the field", arguments: Transport.allCases)
    func payloadLimit(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let client = daemon.client(transport)
        defer { Task { await client.close() } }
        // Postgres stores {"blob":"…"} as {"blob": "…"}: the limit applies to that form.
        let overhead = JSONPayload(["blob": ""]).storedByteCount
        let atLimit = JSONPayload(["blob": .string(String(repeating: "x", count: (1 << 20) - overhead))])
        let (stepRun, _) = try await client.beginStep(runID: UUID(), step: "big", input: atLimit)
        #expect(stepRun.input == atLimit)
        let over = JSONPayload(["blob": .string(String(repeating: "x", count: (1 << 20) - overhead + 1))])
        guard case .invalidArgument(let field, _)? = await storeError({ _ = try await client.completeStep(stepRunID: stepRun.id, output: over) }) else {
            Issue.record("expected invalidArgument")
            return
        }
        #expect(field == "output")
    }
}
