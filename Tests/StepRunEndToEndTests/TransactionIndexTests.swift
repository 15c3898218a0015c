import Foundation
import StepRunCore
import StepRunWire
import Testing
import StepRunTesting

/// A `transaction` whose operation fails its own validation (PROTOCOL.md §7): the error names the
/// index of that operation and the field, and nothing of the transaction is applied — checked
/// through the daemon, with the operations sent as any client would send them.
@Suite("Transaction errors name the failing operation")
struct TransactionIndexTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        /// The bad third operation (index 2), on `runID`.
        var bad: @Sendable (UUID) -> StoreRequest
        var field: String
        var testDescription: String { name }
    }

    static let cases: [Case] = [
        // Checked while the frame is decoded (the JSON of a payload).
        Case(name: "a payload that is not a JSON object", bad: { runID in
            .beginStep(runID: runID, step: "c", input: JSONPayload(trustedText: "[1,2]"), recovery: nil)
        }, field: "operations[2].input"),
        Case(name: "a payload that is not JSON", bad: { runID in
            .scheduleStep(runID: runID, step: "c", input: .empty, recovery: JSONPayload(trustedText: "{\"a\": tru}"))
        }, field: "operations[2].recovery"),
        // Checked after decoding (`StoreRequest.validate`).
        Case(name: "a step name over 255 bytes", bad: { runID in
            .beginStep(runID: runID, step: String(repeating: "x", count: 256), input: .empty, recovery: nil)
        }, field: "operations[2].step"),
        Case(name: "a payload over the limit", bad: { _ in
            .completeStep(stepRunID: UUID(), output: ["a": .string(String(repeating: "x", count: 1 << 20))])
        }, field: "operations[2].output"),
    ]

    @Test("an operation that fails validation: INVALID_ARGUMENT with its index and field, nothing applied", arguments: cases)
    func invalidOperationIsNamed(_ bad: Case) async throws {
        let daemon = try await TestDaemon.shared()
        let runID = UUID()
        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.hello(token: nil)
        try await raw.send(RequestFrame(id: 7, call: .store(.transaction([
            .beginStep(runID: runID, step: "a", input: ["n": 1], recovery: nil),
            .scheduleStep(runID: runID, step: "b", input: .empty, recovery: nil),
            bad.bad(runID),
            .beginStep(runID: runID, step: "d", input: .empty, recovery: nil),
        ]))))
        let response = try #require(try await raw.receive())
        #expect(response.id == 7)
        guard case .failure(.transactionFailed(let index, .invalidArgument(let field, _))) = response.outcome else {
            Issue.record("expected INVALID_ARGUMENT for operation 2, got \(response.outcome)")
            return
        }
        #expect(index == 2)
        #expect(field == bad.field)
        #expect(try await daemon.repository.stepStatuses(runID: runID).isEmpty, "part of the transaction was applied")
        await raw.close()
    }
}
