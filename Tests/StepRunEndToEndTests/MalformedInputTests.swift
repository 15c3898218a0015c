import Foundation
import NIOCore
import StepRunClient
import StepRunCore
import StepRunWire
import Testing
import StepRunTesting

@Suite("Malformed input gets a clear error and the daemon keeps serving")
struct MalformedInputTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var body: [UInt8]
        var id: UInt64
        var code: StatusCode
        var field: String?
        var testDescription: String { name }
    }

    static let runID = Array(UUID().bytes)
    static let cases: [Case] = [
        Case(name: "garbage bytes", body: [0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 0x00, 0x01], id: 0, code: .invalidArgument),
        Case(name: "truncated protobuf", body: Array(Proto.beginStep(id: 42, runID: runID, step: Array("s".utf8), input: Array("{}".utf8)).dropLast(3)), id: 42, code: .invalidArgument),
        Case(name: "unknown call", body: Proto.int(1, 43) + Proto.bytes(999, [1, 2, 3]), id: 43, code: .unimplemented),
        Case(name: "no call at all", body: Proto.int(1, 44), id: 44, code: .invalidArgument, field: "call"),
        Case(name: "missing run_id", body: Proto.beginStep(id: 45, runID: nil, step: Array("s".utf8), input: nil), id: 45, code: .invalidArgument, field: "run_id"),
        Case(name: "15-byte UUID", body: Proto.beginStep(id: 46, runID: Array(runID.prefix(15)), step: Array("s".utf8), input: nil), id: 46, code: .invalidArgument, field: "run_id"),
        Case(name: "JSON array input", body: Proto.beginStep(id: 47, runID: runID, step: Array("s".utf8), input: Array("[1,2]".utf8)), id: 47, code: .invalidArgument, field: "input"),
        Case(name: "JSON scalar input", body: Proto.beginStep(id: 48, runID: runID, step: Array("s".utf8), input: Array("42".utf8)), id: 48, code: .invalidArgument, field: "input"),
        Case(name: "invalid JSON input", body: Proto.beginStep(id: 49, runID: runID, step: Array("s".utf8), input: Array("{\"a\":".utf8)), id: 49, code: .invalidArgument, field: "input"),
        Case(name: "JSON nested 10,000 deep", body: Proto.beginStep(id: 50, runID: runID, step: Array("s".utf8), input: Array(("{\"a\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}").utf8)), id: 50, code: .invalidArgument, field: "input"),
        Case(name: "invalid UTF-8 step name", body: Proto.beginStep(id: 51, runID: runID, step: [0x66, 0xC3, 0x28], input: nil), id: 51, code: .invalidArgument, field: "step"),
        Case(name: "over-long step name", body: Proto.beginStep(id: 52, runID: runID, step: Array(repeating: 0x61, count: 256), input: nil), id: 52, code: .invalidArgument, field: "step"),
        Case(name: "empty frame", body: [], id: 0, code: .invalidArgument, field: "call"),
    ]

    @Test("answered with the expected code, the connection stays open, others are served", arguments: cases, Transport.allCases)
    func malformedRequest(_ testCase: Case, _ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let bystander = daemon.client(transport)
        defer { Task { await bystander.close() } }
        #expect(try await bystander.health().serving)
        var raw = try await RawConnection.connect(daemon, transport)
        try await raw.hello(token: daemon.token)
        try await raw.writeFrame(testCase.body)
        let response = try #require(try await raw.receive())
        #expect(response.id == testCase.id)
        guard case .failure(let error) = response.outcome else {
            Issue.record("expected an error, got \(response.outcome)")
            return
        }
        #expect(error.code == testCase.code, "\(error)")
        if let field = testCase.field, case .invalidArgument(let actual, _) = error {
            #expect(actual == field)
        }
        // The same connection still works, and so does everyone else's.
        try await raw.send(RequestFrame(id: 900, call: .health))
        #expect(try await raw.receive()?.id == 900)
        #expect(try await bystander.health().serving)
        await raw.close()
        let untouched = try #require(UUID(bytes: Self.runID))
        #expect(try await daemon.repository.stepStatuses(runID: untouched) == [:])
    }

    @Test("a frame length over the limit closes that connection only", arguments: Transport.allCases)
    func oversizedFrameClosesConnection(_ transport: Transport) async throws {
        let daemon = try await TestDaemon.shared()
        let bystander = daemon.client(transport)
        defer { Task { await bystander.close() } }
        _ = try await bystander.health()

        var raw = try await RawConnection.connect(daemon, transport)
        try await raw.hello(token: daemon.token)
        try await raw.write([0x7F, 0xFF, 0xFF, 0xFF, 0x00, 0x01])
        let response = try await raw.receive()
        #expect(response?.id == 0)
        if case .failure(let error)? = response?.outcome { #expect(error.code == .invalidArgument) } else { Issue.record("expected an error") }
        #expect(try await raw.receive() == nil)
        _ = try await bystander.health()
    }

    @Test("a frame cut off mid-body and abandoned harms no one")
    func truncatedFrameThenHangUp() async throws {
        let daemon = try await TestDaemon.shared()
        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.hello(token: nil)
        try await raw.write([0x00, 0x00, 0x01, 0x00] + Array(repeating: 0x08, count: 10))
        await raw.close()
        let client = daemon.client(.unix)
        #expect(try await client.health().serving)
        await client.close()
    }

    @Test("more requests in flight than allowed: the excess is RESOURCE_EXHAUSTED, the rest complete")
    func inFlightLimit() async throws {
        let shared = try await TestDaemon.shared()
        let daemon = try await TestDaemon.start(repository: shared.repository) { $0.maxInFlightPerConnection = 2 }
        var raw = try await RawConnection.connect(daemon, .unix)
        try await raw.hello(token: nil)
        let runID = UUID()
        // One write, so the daemon reads all ten requests together and the limit really bites.
        var burst = ByteBuffer()
        for id in 10..<20 {
            WireCodec.encodeRequest(
                RequestFrame(id: UInt64(id), call: .store(.scheduleStep(runID: runID, step: "s\(id)", input: .empty, recovery: nil))),
                into: &burst)
        }
        try await raw.write(Array(burst.readableBytesView))
        var refused = 0
        var succeeded = 0
        for _ in 10..<20 {
            let response = try #require(try await raw.receive())
            switch response.outcome {
            case .success: succeeded += 1
            case .failure(let error):
                #expect(error.code == .resourceExhausted)
                refused += 1
            }
        }
        #expect(succeeded >= 2)
        #expect(refused >= 1)
        #expect(try await shared.repository.stepStatuses(runID: runID).count == succeeded)
        await raw.close()
        daemon.server.shutdown()
    }
}
