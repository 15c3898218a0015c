import Foundation
import StepRunCore
import StepRunPostgres
import Testing
import StepRunTesting

@Suite("Bad input is refused before any SQL and changes nothing")
struct ValidationTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var field: String
        var request: @Sendable (UUID, UUID) -> StoreRequest
        var testDescription: String { name }
    }

    static let big = JSONPayload(["blob": .string(String(repeating: "x", count: 1 << 20))])
    /// 170 bytes sent; Postgres would store each 1e131071 as 131,072 digits, 1.2 MB in all.
    static let expanding = try! JSONPayload(validating: "{" + (0..<9).map { "\"k\($0)\":1e131071" }.joined(separator: ",") + "}")

    static let cases: [Case] = [
        Case(name: "empty step name", field: "step") { run, _ in .beginStep(runID: run, step: "", input: .empty, recovery: nil) },
        Case(name: "step name over 255 bytes", field: "step") { run, _ in
            .beginStep(runID: run, step: String(repeating: "é", count: 128), input: .empty, recovery: nil)
        },
        Case(name: "step name with NUL", field: "step") { run, _ in .scheduleStep(runID: run, step: "a\u{0}b", input: .empty, recovery: nil) },
        Case(name: "input over the payload limit", field: "input") { run, _ in .beginStep(runID: run, step: "s", input: big, recovery: nil) },
        Case(name: "recovery over the payload limit", field: "recovery") { run, _ in .scheduleStep(runID: run, step: "s", input: .empty, recovery: big) },
        Case(name: "output over the payload limit", field: "output") { _, id in .completeStep(stepRunID: id, output: big) },
        Case(name: "manual over the payload limit", field: "manual") { _, id in .completeManualStep(stepRunID: id, output: .empty, manual: big) },
        Case(name: "error over the payload limit", field: "error") { _, id in .failStep(stepRunID: id, error: big) },
        Case(name: "pause target with the reserved name", field: "target") { _, id in
            .persistPauseResume(stepRunID: id, output: .empty, target: .step(ResumeTarget.completeMarker))
        },
        Case(name: "approval target that is empty", field: "ok_target") { _, id in
            .persistApprovalResume(stepRunID: id, okTarget: .step(""), errorTarget: .complete, outputKey: nil)
        },
        Case(name: "fan-out entry with a bad name", field: "steps[1].step") { run, _ in
            .scheduleSteps(runID: run, steps: [ScheduledStep(step: "ok"), ScheduledStep(step: "")])
        },
        Case(name: "attempt number zero", field: "attempt_number") { _, id in
            .recordAttempt(stepRunID: id, attemptNumber: 0, status: .running, error: nil)
        },
        Case(name: "small payload whose stored form is over the limit", field: "input") { run, _ in
            .beginStep(runID: run, step: "s", input: expanding, recovery: nil)
        },
        Case(name: "manual whose stored form is over the limit", field: "manual") { _, id in
            .completeManualStep(stepRunID: id, output: .empty, manual: expanding)
        },
        Case(name: "recovery target too long", field: "target") { _, id in
            .recordFailureRecovery(stepRunID: id, strategy: .undo, target: String(repeating: "t", count: 256))
        },
    ]

    @Test("refused with INVALID_ARGUMENT naming the field", arguments: cases)
    func refused(_ testCase: Case) async throws {
        let store = try await TestDatabase.repository()
        let runID = UUID()
        let (stepRun, _) = try await store.beginStep(runID: runID, step: "s", input: ["original": true])
        let before = try await store.stepStatuses(runID: runID)
        let error = await storeError { _ = try await store.perform(testCase.request(runID, stepRun.id), deadline: nil) }
        guard case .invalidArgument(let field, let message) = error else {
            Issue.record("expected invalidArgument, got \(String(describing: error))")
            return
        }
        #expect(field == testCase.field)
        #expect(!message.isEmpty)
        #expect(try await store.stepStatuses(runID: runID) == before)
        #expect(try await store.getStepRun(runID: runID, step: "s") == stepRun)
    }

    @Test("JSON text that is not an object is refused naming the field", arguments: [
        "[1,2]", "\"text\"", "42", "true", "null", "{\"a\":", "{\"a\":1}x", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}",
        "{\"a\":1e1000000}", "{\"a\":1e-1000000}", "{\"a\":[1,1e131072]}",
        String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000),
    ])
    func nonObjectJSONIsRefused(_ text: String) {
        #expect(throws: StepRunError.self) { _ = try JSONPayload(validating: text, field: "input") }
        do {
            _ = try JSONPayload(validating: text, field: "input")
        } catch {
            guard case .invalidArgument(let field, _) = error else {
                Issue.record("expected invalidArgument, got \(error)")
                return
            }
            #expect(field == "input")
        }
    }

    @Test("a payload exactly at the limit is accepted")
    func payloadAtLimitIsAccepted() async throws {
        let store = try await TestDatabase.repository()
        // The limit applies to the text sent and to the text Postgres stores ({"blob": "…"}).
        let overhead = JSONPayload(["blob": ""]).storedByteCount
        let payload = JSONPayload(["blob": .string(String(repeating: "y", count: StoreLimits.default.maxPayloadBytes - overhead))])
        #expect(payload.storedByteCount == StoreLimits.default.maxPayloadBytes)
        let (stepRun, _) = try await store.beginStep(runID: UUID(), step: "s", input: payload)
        #expect(stepRun.input == payload)
    }
}
