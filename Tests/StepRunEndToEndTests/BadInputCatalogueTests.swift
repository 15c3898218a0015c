import Foundation
import NIOCore
import StepRunClient
import StepRunCore
import StepRunWire
import Testing
import StepRunTesting

/// Every kind of bad input a daemon must survive, one row each: what is sent, what comes back, and
/// whether the connection is still usable. Stored data is checked unchanged afterwards.
@Suite("Bad-input catalogue")
struct BadInputCatalogueTests {
    enum Phase: Sendable {
        /// Sent as the first frame of a fresh connection.
        case beforeHello(Transport)
        /// Sent after a successful Hello on the Unix socket.
        case afterHello
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var name: String
        var phase: Phase
        /// Raw bytes written to the socket (length prefix included).
        var bytes: @Sendable (TestDaemon) -> [UInt8]
        var id: UInt64
        var code: StatusCode
        var field: String?
        var staysOpen: Bool
        /// False for input the daemon closes the connection on without an answer (`id` and `code`
        /// are then not checked).
        var answered = true
        var testDescription: String { name }
    }

    static let runID = UUID()
    static let stepRunID = UUID()
    static let uuid = Array(runID.bytes)

    static func frame(_ body: [UInt8]) -> [UInt8] {
        let count = UInt32(body.count)
        return [UInt8(count >> 24), UInt8(count >> 16 & 0xFF), UInt8(count >> 8 & 0xFF), UInt8(count & 0xFF)] + body
    }

    static func encoded(_ frame: RequestFrame) -> [UInt8] {
        var buffer = ByteBuffer()
        WireCodec.encodeRequest(frame, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    static func begin(_ id: UInt64, runID: [UInt8]? = uuid, step: [UInt8]? = Array("s".utf8), input: String? = nil) -> [UInt8] {
        frame(Proto.beginStep(id: id, runID: runID, step: step, input: input.map { Array($0.utf8) }))
    }

    static func completeStep(_ id: UInt64, output: String) -> [UInt8] {
        frame(Proto.int(1, id) + Proto.bytes(30, Proto.bytes(1, Array(stepRunID.bytes)) + Proto.bytes(2, Array(output.utf8))))
    }

    /// completed_outputs of `runID` (Request field 42) with a page token.
    static func pagedList(_ id: UInt64, token: [UInt8]) -> [UInt8] {
        frame(Proto.int(1, id) + Proto.bytes(42, Proto.bytes(1, uuid) + Proto.bytes(3, token)))
    }

    static let rows: [Row] = [
        Row(name: "request before Hello", phase: .beforeHello(.unix), bytes: { _ in encoded(RequestFrame(id: 5, call: .store(.stepStatuses(runID: runID)))) }, id: 5, code: .failedPrecondition, staysOpen: false),
        Row(name: "wrong protocol version", phase: .beforeHello(.unix), bytes: { _ in encoded(RequestFrame(id: 6, call: .hello(Hello(protocolVersion: 99, clientName: "x", token: nil)))) }, id: 6, code: .failedPrecondition, staysOpen: false),
        Row(name: "TCP Hello without token", phase: .beforeHello(.tcp), bytes: { _ in encoded(RequestFrame(id: 7, call: .hello(Hello(clientName: "x", token: nil)))) }, id: 7, code: .unauthenticated, staysOpen: false),
        Row(name: "TCP Hello with a wrong token", phase: .beforeHello(.tcp), bytes: { d in encoded(RequestFrame(id: 8, call: .hello(Hello(clientName: "x", token: d.token + "x")))) }, id: 8, code: .unauthenticated, staysOpen: false),
        Row(name: "non-protobuf bytes before Hello", phase: .beforeHello(.unix), bytes: { _ in frame([0xFF, 0xFE, 0xFD, 0xFC]) }, id: 0, code: .invalidArgument, staysOpen: false),
        Row(name: "zero-length frame", phase: .afterHello, bytes: { _ in [0, 0, 0, 0] }, id: 0, code: .invalidArgument, field: "call", staysOpen: true),
        Row(name: "frame length over the limit", phase: .afterHello, bytes: { _ in [0x10, 0x00, 0x00, 0x01, 0x08] }, id: 0, code: .invalidArgument, field: "frame", staysOpen: false),
        Row(name: "protobuf truncated mid-message", phase: .afterHello, bytes: { _ in frame(Array(Proto.beginStep(id: 20, runID: uuid, step: Array("s".utf8), input: nil).dropLast(4))) }, id: 20, code: .invalidArgument, staysOpen: true),
        Row(name: "non-protobuf bytes", phase: .afterHello, bytes: { _ in frame([0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]) }, id: 0, code: .invalidArgument, staysOpen: true),
        Row(name: "unknown call", phase: .afterHello, bytes: { _ in frame(Proto.int(1, 21) + Proto.bytes(777, [0x08, 0x01])) }, id: 21, code: .unimplemented, staysOpen: true),
        Row(name: "request without a call", phase: .afterHello, bytes: { _ in frame(Proto.int(1, 22) + Proto.int(2, 100)) }, id: 22, code: .invalidArgument, field: "call", staysOpen: true),
        Row(name: "missing run_id", phase: .afterHello, bytes: { _ in begin(23, runID: nil) }, id: 23, code: .invalidArgument, field: "run_id", staysOpen: true),
        Row(name: "empty UUID", phase: .afterHello, bytes: { _ in begin(24, runID: []) }, id: 24, code: .invalidArgument, field: "run_id", staysOpen: true),
        Row(name: "15-byte UUID", phase: .afterHello, bytes: { _ in begin(25, runID: Array(uuid.prefix(15))) }, id: 25, code: .invalidArgument, field: "run_id", staysOpen: true),
        Row(name: "17-byte UUID", phase: .afterHello, bytes: { _ in begin(26, runID: uuid + [0]) }, id: 26, code: .invalidArgument, field: "run_id", staysOpen: true),
        Row(name: "missing step", phase: .afterHello, bytes: { _ in begin(27, step: nil) }, id: 27, code: .invalidArgument, field: "step", staysOpen: true),
        Row(name: "invalid UTF-8 step name", phase: .afterHello, bytes: { _ in begin(28, step: [0x61, 0xFF, 0x62]) }, id: 28, code: .invalidArgument, field: "step", staysOpen: true),
        Row(name: "step name of 256 bytes", phase: .afterHello, bytes: { _ in begin(29, step: Array(repeating: 0x62, count: 256)) }, id: 29, code: .invalidArgument, field: "step", staysOpen: true),
        Row(name: "step name with NUL", phase: .afterHello, bytes: { _ in begin(30, step: [0x61, 0x00, 0x62]) }, id: 30, code: .invalidArgument, field: "step", staysOpen: true),
        Row(name: "JSON array input", phase: .afterHello, bytes: { _ in begin(31, input: "[1,2,3]") }, id: 31, code: .invalidArgument, field: "input", staysOpen: true),
        Row(name: "JSON number input", phase: .afterHello, bytes: { _ in begin(32, input: "12") }, id: 32, code: .invalidArgument, field: "input", staysOpen: true),
        Row(name: "JSON string input", phase: .afterHello, bytes: { _ in begin(33, input: "\"hello\"") }, id: 33, code: .invalidArgument, field: "input", staysOpen: true),
        Row(name: "invalid JSON input", phase: .afterHello, bytes: { _ in begin(34, input: "{\"a\": tru}") }, id: 34, code: .invalidArgument, field: "input", staysOpen: true),
        Row(name: "JSON nested 10,000 deep", phase: .afterHello, bytes: { _ in begin(35, input: "{\"a\":" + String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_001)) }, id: 35, code: .invalidArgument, field: "input", staysOpen: true),
        Row(name: "JSON with \\u0000", phase: .afterHello, bytes: { _ in begin(36, input: "{\"a\":\"\\u0000\"}") }, id: 36, code: .invalidArgument, field: "input", staysOpen: true),
        Row(name: "payload over the limit", phase: .afterHello, bytes: { _ in completeStep(37, output: "{\"a\":\"" + String(repeating: "x", count: 1 << 20) + "\"}") }, id: 37, code: .invalidArgument, field: "output", staysOpen: true),
        Row(name: "unknown step run id", phase: .afterHello, bytes: { _ in completeStep(38, output: "{}") }, id: 38, code: .notFound, staysOpen: true),
        Row(name: "second Hello", phase: .afterHello, bytes: { _ in encoded(RequestFrame(id: 39, call: .hello(Hello(clientName: "again", token: nil)))) }, id: 39, code: .failedPrecondition, staysOpen: true),
        // Valid JSON jsonb cannot store (issue 20): refused naming the field, never INTERNAL.
        Row(name: "number too large for numeric", phase: .afterHello, bytes: { _ in begin(61, input: #"{"a":1e1000000}"#) }, id: 61, code: .invalidArgument, field: "input", staysOpen: true),
        Row(name: "number too small for numeric", phase: .afterHello, bytes: { _ in begin(62, input: #"{"a":1e-1000000}"#) }, id: 62, code: .invalidArgument, field: "input", staysOpen: true),
        Row(name: "number with more than 16,383 digits after the point", phase: .afterHello, bytes: { _ in completeStep(63, output: #"{"a":1.5e-16383}"#) }, id: 63, code: .invalidArgument, field: "output", staysOpen: true),
        Row(name: "JSON with a lone surrogate escape", phase: .afterHello, bytes: { _ in begin(64, input: #"{"a":"\ud800"}"#) }, id: 64, code: .invalidArgument, field: "input", staysOpen: true),
        // 1,048,575 bytes sent, 1,572,859 once Postgres renders it ("1, 1, ..."): over the limit as stored.
        Row(name: "payload under the limit that grows past it when stored", phase: .afterHello, bytes: { _ in begin(65, input: #"{"a":["# + Array(repeating: "1", count: 524_284).joined(separator: ",") + "]}") }, id: 65, code: .invalidArgument, field: "input", staysOpen: true),
        Row(name: "transaction whose operation 2 has a payload that is not an object", phase: .afterHello, bytes: { _ in encoded(RequestFrame(id: 120, call: .store(.transaction([.beginStep(runID: runID, step: "t0", input: .empty, recovery: nil), .beginStep(runID: runID, step: "t1", input: .empty, recovery: nil), .beginStep(runID: runID, step: "t2", input: JSONPayload(trustedText: "[1]"), recovery: nil)])))) }, id: 120, code: .invalidArgument, field: "operations[2].input", staysOpen: true),
        Row(name: "read inside a transaction", phase: .afterHello, bytes: { _ in encoded(RequestFrame(id: 40, call: .store(.transaction([.completedSteps(runID: runID)])))) }, id: 40, code: .invalidArgument, staysOpen: true),
        Row(name: "page token that is not one", phase: .afterHello, bytes: { _ in pagedList(41, token: [1, 2, 3]) }, id: 41, code: .invalidArgument, field: "page_token", staysOpen: true),
        Row(name: "page token of another list", phase: .afterHello, bytes: { _ in pagedList(42, token: PageToken(list: .stepStatuses, scope: runID, cursor: .step("a")).bytes) }, id: 42, code: .invalidArgument, field: "page_token", staysOpen: true),
        Row(name: "page token of another run", phase: .afterHello, bytes: { _ in pagedList(43, token: PageToken(list: .completedOutputs, scope: UUID(), cursor: .timeKey(time: 1, insertedAt: 1, id: UUID())).bytes) }, id: 43, code: .invalidArgument, field: "page_token", staysOpen: true),
        Row(name: "page token with a time the store cannot hold", phase: .afterHello, bytes: { _ in pagedList(44, token: PageToken(list: .completedOutputs, scope: runID, cursor: .timeKey(time: .max, insertedAt: 1, id: UUID())).bytes) }, id: 44, code: .invalidArgument, field: "page_token", staysOpen: true),
        Row(name: "page token with time Int64.min (abs would trap)", phase: .afterHello, bytes: { _ in pagedList(46, token: PageToken(list: .completedOutputs, scope: runID, cursor: .timeKey(time: .min, insertedAt: 1, id: UUID())).bytes) }, id: 46, code: .invalidArgument, field: "page_token", staysOpen: true),
        Row(name: "page token with inserted_at Int64.min (abs would trap)", phase: .afterHello, bytes: { _ in pagedList(47, token: PageToken(list: .completedOutputs, scope: runID, cursor: .timeKey(time: 1, insertedAt: .min, id: UUID())).bytes) }, id: 47, code: .invalidArgument, field: "page_token", staysOpen: true),
        Row(name: "request id 0", phase: .afterHello, bytes: { _ in encoded(RequestFrame(id: 0, call: .store(.stepStatuses(runID: runID)))) }, id: 0, code: .invalidArgument, field: "id", staysOpen: true),
        Row(name: "Hello with id 0", phase: .beforeHello(.unix), bytes: { _ in encoded(RequestFrame(id: 0, call: .hello(Hello(clientName: "x", token: nil)))) }, id: 0, code: .invalidArgument, field: "id", staysOpen: false),
        Row(name: "get_step_run's field number inside a transaction", phase: .afterHello, bytes: { _ in frame(Proto.int(1, 141) + Proto.bytes(61, Proto.bytes(1, Proto.bytes(40, Proto.bytes(1, uuid) + Proto.bytes(2, Array("known".utf8)))))) }, id: 141, code: .invalidArgument, field: "operations[0]", staysOpen: true),
        Row(name: "purge_run's field number inside a transaction", phase: .afterHello, bytes: { _ in frame(Proto.int(1, 142) + Proto.bytes(61, Proto.bytes(1, Proto.bytes(60, Proto.bytes(1, uuid))))) }, id: 142, code: .invalidArgument, field: "operations[0]", staysOpen: true),
        Row(name: "unknown operation inside a transaction", phase: .afterHello, bytes: { _ in frame(Proto.int(1, 143) + Proto.bytes(61, Proto.bytes(1, Proto.bytes(98, [0x08, 0x01])))) }, id: 143, code: .unimplemented, staysOpen: true),
        Row(name: "resume target step not valid UTF-8", phase: .afterHello, bytes: { _ in frame(Proto.int(1, 144) + Proto.bytes(33, Proto.bytes(1, Array(stepRunID.bytes)) + Proto.bytes(2, Array("{}".utf8)) + Proto.bytes(3, Proto.bytes(1, [0x61, 0xFF])))) }, id: 144, code: .invalidArgument, field: "target", staysOpen: true),
        Row(name: "approval target named __complete__", phase: .afterHello, bytes: { _ in frame(Proto.int(1, 145) + Proto.bytes(34, Proto.bytes(1, Array(stepRunID.bytes)) + Proto.bytes(2, Proto.bytes(2, [])) + Proto.bytes(3, Proto.bytes(1, Array("__complete__".utf8))))) }, id: 145, code: .invalidArgument, field: "error_target", staysOpen: true),
        Row(name: "TLS ClientHello on a plain port", phase: .beforeHello(.tcp), bytes: { _ in [0x16, 0x03, 0x01, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x2B, 0x03, 0x03] + Array(repeating: 0, count: 32) }, id: 0, code: .invalidArgument, staysOpen: false, answered: false),
    ]

    @Test("at least 25 kinds of bad input are catalogued")
    func catalogueSize() {
        #expect(Self.rows.count >= 25)
    }

    @Test("each is answered with its code, keeps or closes the connection as listed, and changes nothing", arguments: rows)
    func badInput(_ row: Row) async throws {
        let daemon = try await TestDaemon.shared()
        let bystander = daemon.client(.unix)
        let (known, _) = try await bystander.beginStep(runID: Self.runID, step: "known", input: ["v": 1])
        let before = try await daemon.repository.getStepRun(runID: Self.runID, step: "known")

        var raw: RawConnection
        switch row.phase {
        case .beforeHello(let transport):
            raw = try await RawConnection.connect(daemon, transport)
        case .afterHello:
            raw = try await RawConnection.connect(daemon, .unix)
            try await raw.hello(token: nil)
        }
        try await raw.write(row.bytes(daemon))
        guard row.answered else {
            #expect(try await raw.receive() == nil, "expected the connection closed without an answer")
            await raw.close()
            #expect(try await bystander.health().serving)
            #expect(try await daemon.repository.getStepRun(runID: Self.runID, step: "known") == before)
            await bystander.close()
            return
        }
        let response = try #require(try await raw.receive(), "no answer to \(row.name)")
        #expect(response.id == row.id)
        guard case .failure(let error) = response.outcome else {
            Issue.record("expected \(row.code), got success")
            return
        }
        #expect(error.code == row.code, "\(error)")
        if let field = row.field {
            if case .invalidArgument(let actual, _) = error {
                #expect(actual == field)
            } else if case .transactionFailed(_, .invalidArgument(let actual, _)) = error {
                #expect(actual == field)
            }
        }
        if row.staysOpen {
            try await raw.send(RequestFrame(id: 999, call: .health))
            #expect(try await raw.receive()?.id == 999)
        } else {
            #expect(try await raw.receive() == nil, "the connection should have been closed")
        }
        await raw.close()

        #expect(try await bystander.health().serving)
        #expect(try await daemon.repository.getStepRun(runID: Self.runID, step: "known") == before)
        #expect(known.id == before?.id)
        #expect(Set(try await daemon.repository.stepStatuses(runID: Self.runID).keys).isSubset(of: ["known"]))
        await bystander.close()
    }
}
