import Foundation
import StepRunClient
import StepRunCore
import StepRunPostgres
import StepRunServer
import StepRunWire
import Testing
import StepRunTesting

/// Every row the daemon accepts can be read back in one response, and no write is committed and
/// then answered with an error for its size (SPEC.md, Entities; issue 20).
@Suite("Rows always fit a response")
struct RowSizeTests {
    /// A payload whose stored form (`{"blob": "x…x"}`) is exactly `bytes` long.
    static func payload(storedBytes bytes: Int, fill: Character = "x") -> JSONPayload {
        let payload = JSONPayload(["blob": .string(String(repeating: fill, count: bytes - 12))])
        precondition(payload.storedByteCount == bytes)
        return payload
    }

    static let limit = StoreLimits.default.maxPayloadBytes

    @Test("a row with five JSON fields at the payload limit is acknowledged and reads back whole")
    func rowOfFieldsAtTheLimitReadsBack() async throws {
        let client = try await TestDaemon.shared().client(.unix)
        defer { Task { await client.close() } }
        let runID = UUID()
        let big = { (fill: Character) in Self.payload(storedBytes: Self.limit, fill: fill) }
        let (claimed, _) = try await client.beginStep(runID: runID, step: "wide", input: big("i"), recovery: big("r"))
        _ = try await client.persistPauseResume(stepRunID: claimed.id, output: big("p"), target: .step("next"))
        let completed = try await client.completeManualStep(stepRunID: claimed.id, output: big("o"), manual: big("m"))
        let read = try #require(try await client.getStepRun(runID: runID, step: "wide"))
        #expect(read == completed)
        #expect(read.input == big("i") && read.recovery == big("r") && read.output == big("o") && read.manual == big("m"))
        #expect(read.resume?.storedByteCount ?? 0 > Self.limit)
    }

    @Test("a failed row with its error, merged recovery and re-claimed input at the limit reads back after every write")
    func failedRowAtTheLimitReadsBackAfterEveryWrite() async throws {
        let client = try await TestDaemon.shared().client(.unix)
        defer { Task { await client.close() } }
        let runID = UUID()
        let big = { (fill: Character) in Self.payload(storedBytes: Self.limit, fill: fill) }
        func readBack(_ written: StepRun) async throws {
            #expect(try await client.getStepRun(runID: runID, step: "failing") == written)
        }
        let (claimed, _) = try await client.beginStep(runID: runID, step: "failing", input: big("i"), recovery: big("r"))
        try await readBack(try await client.persistPauseResume(stepRunID: claimed.id, output: big("p"), target: .step("next")))
        try await readBack(try await client.failStep(stepRunID: claimed.id, error: big("e")))
        // Each merge replaces the "failure" key: repeated merges do not grow the row.
        for strategy in [RecoveryStrategy.compensation, .undo, .compensation] {
            let merged = try await client.recordFailureRecovery(stepRunID: claimed.id, strategy: strategy, target: String(repeating: "\u{1}", count: 255))
            #expect(merged.recovery!.byteCount <= Self.limit + StoreLimits.maxStoreAddedBytes)
            try await readBack(merged)
        }
        try await readBack(try await client.updateRecovery(stepRunID: claimed.id, recovery: big("u")))
        let (reclaimed, decision) = try await client.beginStep(runID: runID, step: "failing", input: big("j"), recovery: big("s"))
        #expect(decision == .execute)
        try await readBack(reclaimed)
    }

    @Test("a transaction whose results would not fit one response is refused at the operation where they stop fitting, and nothing is stored")
    func oversizedTransactionIsRefusedBeforeCommit() async throws {
        let client = try await TestDaemon.shared().client(.unix)
        defer { Task { await client.close() } }
        let runID = UUID()
        let big = Self.payload(storedBytes: Self.limit)
        // A completed row of five near-limit fields: ~5 MiB, so two copies of it exceed an 8 MiB frame.
        let (claimed, _) = try await client.beginStep(runID: runID, step: "wide", input: big, recovery: big)
        _ = try await client.persistPauseResume(stepRunID: claimed.id, output: big, target: .complete)
        let before = try await client.completeManualStep(stepRunID: claimed.id, output: big, manual: big)

        let error = await storeError {
            _ = try await client.transaction([
                .updateRecovery(stepRunID: claimed.id, recovery: ["first": 1]),
                .updateRecovery(stepRunID: claimed.id, recovery: ["second": 2]),
            ])
        }
        guard case .transactionFailed(let index, .invalidArgument(let field, let message))? = error else {
            Issue.record("expected a refused transaction, got \(String(describing: error))")
            return
        }
        #expect(index == 1)
        #expect(field == "operations[1]")
        #expect(message.contains("bytes"))
        #expect(try await client.getStepRun(runID: runID, step: "wide") == before)
    }

    @Test("a transaction whose results fit is applied as before")
    func transactionThatFitsIsApplied() async throws {
        let client = try await TestDaemon.shared().client(.unix)
        defer { Task { await client.close() } }
        let runID = UUID()
        let big = Self.payload(storedBytes: Self.limit)
        let (claimed, _) = try await client.beginStep(runID: runID, step: "s", input: big)
        let results = try await client.transaction([
            .updateRecovery(stepRunID: claimed.id, recovery: big), .updateRecovery(stepRunID: claimed.id, recovery: ["done": true]),
        ])
        #expect(results.count == 2)
        #expect(try await client.getStepRun(runID: runID, step: "s")?.recovery == ["done": true])
    }

    /// A store that answers a write with a row larger than any frame: what a defect would look like.
    final class OversizedStore: StepRunStore {
        func perform(_ request: StoreRequest, deadline: ContinuousClock.Instant?) async throws -> StoreResult {
            let huge = JSONPayload(trustedText: "{\"a\": \"" + String(repeating: "x", count: 200_000) + "\"}")
            let row = StepRun(
                id: UUID(), runID: UUID(), step: "s", status: .completed, input: huge,
                insertedAt: Timestamp(microsecondsSinceEpoch: 0), updatedAt: Timestamp(microsecondsSinceEpoch: 0))
            if case .getStepRun = request { return .foundStepRun(row) }
            return .stepRun(row)
        }
    }

    @Test("a stored row larger than this daemon's frame is answered FAILED_PRECONDITION result_too_large, never the retryable RESOURCE_EXHAUSTED")
    func rowLargerThanTheFrameIsResultTooLarge() async throws {
        // Written by a daemon with the default limits; read by one whose frame is far smaller
        // (as after lowering max-frame-bytes on one daemon of several).
        let shared = try await TestDaemon.shared()
        let writer = shared.client(.unix)
        defer { Task { await writer.close() } }
        let runID = UUID()
        _ = try await writer.beginStep(runID: runID, step: "wide", input: Self.payload(storedBytes: 200_000))
        let small = try await TestDaemon.start(repository: shared.repository) {
            $0.maxFrameBytes = 64 << 10
            $0.storeLimits.maxPayloadBytes = 8 << 10
        }
        defer { small.server.shutdown() }
        let reader = small.client(.unix)
        defer { Task { await reader.close() } }
        let error = await storeError { _ = try await reader.getStepRun(runID: runID, step: "wide") }
        guard case .resultTooLarge(let message)? = error else {
            Issue.record("expected result_too_large, got \(String(describing: error))")
            return
        }
        #expect(error?.code == .failedPrecondition && error?.reason == "result_too_large" && error?.isRetryable == false)
        #expect(message.contains("max-frame-bytes"), "\(message)")
        // The connection survives: the next call is answered.
        #expect(try await reader.getStepRun(runID: UUID(), step: "none") == nil)
    }

    @Test("a write whose result cannot be sent is answered INTERNAL, never the retryable RESOURCE_EXHAUSTED")
    func unsendableWriteResultIsInternal() async throws {
        let shared = try await TestDaemon.shared()
        let daemon = try await TestDaemon.start(repository: shared.repository, store: OversizedStore()) {
            $0.maxFrameBytes = 64 << 10
            $0.storeLimits.maxPayloadBytes = 8 << 10
        }
        defer { daemon.server.shutdown() }
        let client = daemon.client(.unix)
        defer { Task { await client.close() } }
        let write = await storeError { _ = try await client.completeStep(stepRunID: UUID(), output: [:]) }
        #expect(write?.code == .internal)
        let read = await storeError { _ = try await client.getStepRun(runID: UUID(), step: "s") }
        #expect(read?.code == .failedPrecondition && read?.reason == "result_too_large")
    }
}
