import Foundation
import StepRunCore
import StepRunPostgres
import Testing
import StepRunTesting

@Suite("Attempt history")
struct AttemptTests {
    private func stepRun(_ store: StepRunRepository) async throws -> StepRun {
        try await store.beginStep(runID: UUID(), step: "s").0
    }

    @Test("32 concurrent begin_attempt calls get 1…32 with no error")
    func concurrentBeginAttemptNumbersAreConsecutive() async throws {
        let store = try await TestDatabase.repository()
        let target = try await stepRun(store)
        let numbers = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<32 {
                group.addTask { try await store.beginAttempt(stepRunID: target.id).attemptNumber }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(numbers.sorted() == Array(1...32))
        #expect(try await store.attemptCount(stepRunID: target.id) == 32)
        #expect(try await store.latestAttempt(stepRunID: target.id)?.attemptNumber == 32)
    }

    @Test("record_attempt with a number that exists is ALREADY_EXISTS")
    func duplicateExplicitAttemptIsAlreadyExists() async throws {
        let store = try await TestDatabase.repository()
        let target = try await stepRun(store)
        try await store.recordAttempt(stepRunID: target.id, attemptNumber: 1, status: .failed, error: ["e": 1])
        let error = await storeError {
            _ = try await store.recordAttempt(stepRunID: target.id, attemptNumber: 1, status: .completed)
        }
        #expect(error?.code == .alreadyExists)
        let attempts = try await store.listAttempts(stepRunID: target.id)
        #expect(attempts.count == 1)
        #expect(attempts[0].status == .failed)
    }

    @Test("begin_attempt continues after the highest explicitly recorded number")
    func beginAttemptFollowsRecordedNumbers() async throws {
        let store = try await TestDatabase.repository()
        let target = try await stepRun(store)
        try await store.recordAttempt(stepRunID: target.id, attemptNumber: 3, status: .failed)
        let next = try await store.beginAttempt(stepRunID: target.id)
        #expect(next.attemptNumber == 4)
        #expect(next.status == .running)
    }

    @Test("complete_attempt and fail_attempt are fenced: stale_attempt with the current status")
    func attemptUpdatesAreFenced() async throws {
        let store = try await TestDatabase.repository()
        let target = try await stepRun(store)
        let attempt = try await store.beginAttempt(stepRunID: target.id)
        let failed = try await store.failAttempt(attemptID: attempt.id, error: ["why": "timeout"])
        #expect(failed.status == .failed)
        #expect(try failed.error?.object == ["why": "timeout"])

        let late = await storeError { _ = try await store.completeAttempt(attemptID: attempt.id) }
        #expect(late == .staleAttempt(status: .failed))
        #expect(late?.reason == "stale_attempt")

        let second = try await store.beginAttempt(stepRunID: target.id)
        let completed = try await store.completeAttempt(attemptID: second.id)
        #expect(completed.status == .completed)
        #expect(completed.error == nil)
        let missing = await storeError { _ = try await store.completeAttempt(attemptID: UUID()) }
        #expect(missing?.code == .notFound)
    }

    @Test("list_attempts is ordered by number; latest_attempt is nil and count 0 before any attempt")
    func attemptReads() async throws {
        let store = try await TestDatabase.repository()
        let target = try await stepRun(store)
        #expect(try await store.latestAttempt(stepRunID: target.id) == nil)
        #expect(try await store.attemptCount(stepRunID: target.id) == 0)
        #expect(try await store.listAttempts(stepRunID: target.id).isEmpty)
        for _ in 0..<3 { _ = try await store.beginAttempt(stepRunID: target.id) }
        #expect(try await store.listAttempts(stepRunID: target.id).map(\.attemptNumber) == [1, 2, 3])
    }
}
