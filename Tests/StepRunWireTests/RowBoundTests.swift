import Foundation
import NIOCore
import StepRunCore
import StepRunWire
import Testing

/// The arithmetic the start-up check and the transaction budget rely on, against the real encoder.
@Suite("The largest possible row fits the bound the limits promise")
struct RowBoundTests {
    /// A step run with every JSON field as large as the store can make it under `limits`.
    static func largestRow(_ limits: StoreLimits) -> StepRun {
        func blob(_ bytes: Int) -> JSONPayload {
            JSONPayload(trustedText: "{\"b\": \"" + String(repeating: "x", count: bytes - 9) + "\"}")
        }
        let field = blob(limits.maxPayloadBytes)
        let grown = blob(limits.maxPayloadBytes + StoreLimits.maxStoreAddedBytes)
        return StepRun(
            id: UUID(), runID: UUID(), step: String(repeating: "\u{10FFFF}", count: 63) + "xxx", status: .completed,
            input: field, output: field, lastError: field, recovery: grown, resume: grown, manual: field,
            insertedAt: Timestamp(microsecondsSinceEpoch: .min), updatedAt: Timestamp(microsecondsSinceEpoch: .min),
            completedAt: Timestamp(microsecondsSinceEpoch: .min))
    }

    static func encodedSize(_ result: StoreResult) -> Int {
        var buffer = ByteBuffer()
        WireCodec.encodeResponse(ResponseFrame(id: .max, outcome: .success(.store(result))), into: &buffer)
        return buffer.readableBytes - WireProtocol.lengthPrefixBytes
    }

    @Test("every result carrying the largest row encodes within maxStepRunBytes and within its own bound",
          arguments: [1 << 20, 64 << 10, 2])
    func largestRowFits(_ payloadLimit: Int) {
        let limits = StoreLimits(maxPayloadBytes: max(payloadLimit, 16))
        let row = Self.largestRow(limits)
        #expect(row.step.utf8.count == 255)
        for result in [StoreResult.begin(row, .execute), .schedule(row, .skip), .stepRun(row), .foundStepRun(row)] {
            let size = Self.encodedSize(result)
            #expect(size <= limits.maxStepRunBytes)
            #expect(size <= result.encodedSizeBound)
        }
    }

    @Test("a transaction's results encode within the bound the repository checks before COMMIT")
    func transactionBoundHolds() {
        let row = Self.largestRow(StoreLimits(maxPayloadBytes: 4096))
        let results: [StoreResult] = [.stepRun(row), .begin(row, .skip), .scheduledSteps(["a", "b"]), .deletedCount(3), .attempt(Fixture.runningAttempt)]
        let transaction = StoreResult.transaction(results)
        #expect(Self.encodedSize(transaction) <= transaction.encodedSizeBound)
        #expect(transaction.encodedSizeBound <= 64 + results.reduce(0) { $0 + 16 + $1.encodedSizeBound })
    }
}
