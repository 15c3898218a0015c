import Foundation
import NIOCore
import StepRunClient
import StepRunCore
import StepRunWire
import Testing
import StepRunTesting

/// The framing rules of docs/PROTOCOL.md §3–§8 that a client written from the document alone relies
/// on, each through a real daemon over a raw connection.
@Suite("Protocol rules")
struct ProtocolRulesTests {
    static func failure(_ response: ResponseFrame?) -> StepRunError? {
        guard case .failure(let error)? = response?.outcome else { return nil }
        return error
    }

    static func field(_ error: StepRunError?) -> String? {
        switch error {
        case .invalidArgument(let field, _)?: field
        case .transactionFailed(_, .invalidArgument(let field, _))?: field
        default: nil
        }
    }

    @Test("a request with id 0 is refused: INVALID_ARGUMENT, field id, answered with id 0, not run; the connection stays open",
          arguments: Transport.allCases)
    func requestIDZeroIsRefused(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        var raw = try await RawConnection.connect(daemon, transport)
        try await raw.hello(token: daemon.token)
        let runID = UUID()
        try await raw.send(RequestFrame(id: 0, call: .store(.scheduleStep(runID: runID, step: "zero", input: .empty, recovery: nil))))
        let response = try #require(try await raw.receive())
        #expect(response.id == 0)
        let error = Self.failure(response)
        #expect(error?.code == .invalidArgument, "\(String(describing: error))")
        #expect(Self.field(error) == "id")
        #expect(error?.message.contains("id 0 is reserved") == true, "\(String(describing: error))")
        try await raw.send(RequestFrame(id: 2, call: .health))
        #expect(try await raw.receive()?.id == 2)
        await raw.close()
        #expect(try await daemon.repository.stepStatuses(runID: runID) == [:])
    }

    @Test("a request reusing the id of one still in flight is refused with field id; the first is answered as usual")
    func duplicateInFlightIDIsRefused() async throws {
        let daemon = try await TestDaemon.slow(.seconds(3))
        defer { daemon.server.shutdown() }
        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.hello(token: nil)
        let runID = UUID()
        // Both in one write: sent one by one, a loaded machine could let the first finish before
        // the second arrived, and the second would then be run, not refused.
        var frames = ByteBuffer()
        for step in ["first", "second"] {
            WireCodec.encodeRequest(RequestFrame(id: 5, call: .store(.scheduleStep(runID: runID, step: step, input: .empty, recovery: nil))), into: &frames)
        }
        try await raw.write(Array(frames.readableBytesView))
        // The refusal comes at once; the first request only after the slow store's delay.
        try await Self.expectDuplicateRefusalThenFirstAnswer(&raw)
        // Once answered, the id is free again.
        try await raw.send(RequestFrame(id: 5, call: .health))
        let reused = try #require(try await raw.receive())
        #expect(reused.id == 5)
        #expect(Self.failure(reused) == nil)
        await raw.close()
        #expect(try await daemon.repository.stepStatuses(runID: runID) == ["first": .pending])
    }

    @Test("a malformed frame reusing the id of a request in flight is refused with field id; the request in flight gets its one answer")
    func malformedFrameWithInFlightIDIsRefusedAsDuplicate() async throws {
        let daemon = try await TestDaemon.slow(.seconds(3))
        defer { daemon.server.shutdown() }
        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.hello(token: nil)
        let runID = UUID()
        // Both in one write, so the second surely arrives while the first is in the slow store.
        var frames = ByteBuffer()
        WireCodec.encodeRequest(RequestFrame(id: 5, call: .store(.scheduleStep(runID: runID, step: "first", input: .empty, recovery: nil))), into: &frames)
        let malformed = Proto.beginStep(id: 5, runID: Array(runID.bytes), step: Array("second".utf8), input: Array("[1,2]".utf8))
        frames.writeInteger(UInt32(malformed.count))
        frames.writeBytes(malformed)
        try await raw.write(Array(frames.readableBytesView))
        try await Self.expectDuplicateRefusalThenFirstAnswer(&raw)
        // No third answer for id 5: the next one is the health check's.
        try await raw.send(RequestFrame(id: 6, call: .health))
        #expect(try await raw.receive()?.id == 6)
        await raw.close()
        #expect(try await daemon.repository.stepStatuses(runID: runID) == ["first": .pending])
    }

    /// The answers to a request with id 5 in the slow store followed by a second frame with id 5:
    /// first the refusal of the second (field `id`, at once), then the first one's own result.
    private static func expectDuplicateRefusalThenFirstAnswer(_ raw: inout RawConnection) async throws {
        let refusal = try #require(try await raw.receive())
        #expect(refusal.id == 5)
        let error = failure(refusal)
        #expect(error?.code == .invalidArgument, "\(String(describing: error))")
        #expect(field(error) == "id", "\(String(describing: error))")
        #expect(error?.message.contains("already in flight") == true)
        let answer = try #require(try await raw.receive())
        #expect(answer.id == 5)
        guard case .success(.store(.schedule(let scheduled, _))) = answer.outcome else {
            Issue.record("expected the first request's result, got \(answer.outcome)")
            return
        }
        #expect(scheduled.step == "first")
    }

    @Test("a read's field number inside a transaction is INVALID_ARGUMENT naming the operation and the call")
    func readInsideTransactionIsInvalidArgument() async throws {
        let daemon = try await TestDaemon.shared()
        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.hello(token: nil)
        let runID = UUID()
        // operations[0] schedules a step, operations[1] is get_step_run (field 40) written by hand.
        let schedule = Proto.bytes(21, Proto.bytes(1, Array(runID.bytes)) + Proto.bytes(2, Array("s".utf8)))
        let read = Proto.bytes(40, Proto.bytes(1, Array(runID.bytes)) + Proto.bytes(2, Array("s".utf8)))
        try await raw.writeFrame(Proto.int(1, 12) + Proto.bytes(61, Proto.bytes(1, schedule) + Proto.bytes(1, read)))
        let response = try #require(try await raw.receive())
        #expect(response.id == 12)
        let error = Self.failure(response)
        #expect(error?.code == .invalidArgument, "\(String(describing: error))")
        #expect(Self.field(error) == "operations[1]")
        if case .transactionFailed(let index, let cause)? = error {
            #expect(index == 1)
            #expect(cause.message.contains("get_step_run"), "\(cause.message)")
        } else {
            Issue.record("expected a transaction failure, got \(String(describing: error))")
        }
        await raw.close()
        #expect(try await daemon.repository.stepStatuses(runID: runID) == [:])
    }

    @Test("an unknown field number inside a transaction is UNIMPLEMENTED with the operation's index")
    func unknownTransactionOperationIsUnimplemented() async throws {
        let daemon = try await TestDaemon.shared()
        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.hello(token: nil)
        try await raw.writeFrame(Proto.int(1, 13) + Proto.bytes(61, Proto.bytes(1, Proto.bytes(99, [0x08, 0x01]))))
        let response = try #require(try await raw.receive())
        #expect(response.id == 13)
        let error = Self.failure(response)
        #expect(error?.code == .unimplemented, "\(String(describing: error))")
        if case .transactionFailed(let index, _)? = error { #expect(index == 0) } else { Issue.record("expected a transaction failure") }
        await raw.close()
    }

    @Test("step_statuses lists steps by the bytes of their UTF-8 names, not by Unicode-aware or collated order")
    func stepStatusesSortByBytes() async throws {
        let daemon = try await TestDaemon.shared()
        let runID = UUID()
        // Byte order: "Z" < "a" < "e\u{301}x" (0x65 …) < "\u{e9}a" (0xC3 0xA9 …). Swift's String `<`
        // compares canonical forms ("éx" after "éa"); a collation would put "Z" after "a".
        let names = ["\u{e9}a", "a", "e\u{301}x", "Z"]
        for name in names {
            _ = try await daemon.repository.scheduleStep(runID: runID, step: name, input: .empty)
        }
        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.hello(token: nil)
        try await raw.send(RequestFrame(id: 14, call: .store(.stepStatuses(runID: runID))))
        let body = try #require(await raw.receiveBody())
        let result = try #require(Proto.lengthDelimited(44, in: body)?.first, "no step_statuses result")
        let entries = try #require(Proto.lengthDelimited(1, in: result))
        let steps = try entries.map { try #require(Proto.lengthDelimited(1, in: $0)?.first) }
        #expect(steps == [Array("Z".utf8), Array("a".utf8), Array("e\u{301}x".utf8), Array("\u{e9}a".utf8)])
        await raw.close()
    }

    @Test("timeout_ms above the cap is lowered to it, not refused")
    func timeoutIsCapped() async throws {
        let daemon = try await TestDaemon.slow(.seconds(10)) {
            $0.defaultRequestTimeout = .milliseconds(100)
            $0.maxRequestTimeout = .milliseconds(400)
        }
        defer { daemon.server.shutdown() }
        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.hello(token: nil)
        let started = ContinuousClock.now
        try await raw.send(RequestFrame(id: 15, timeoutMs: UInt32.max, call: .store(.completedSteps(runID: UUID()))))
        let response = try #require(try await raw.receive())
        let elapsed = ContinuousClock.now - started
        #expect(response.id == 15)
        #expect(Self.failure(response)?.code == .deadlineExceeded)
        // Answered at the 400 ms cap, long before the store's 10 s (or the 49 days asked for).
        #expect(elapsed >= .milliseconds(350) && elapsed < .seconds(8), "answered after \(elapsed)")
        await raw.close()
    }
}
