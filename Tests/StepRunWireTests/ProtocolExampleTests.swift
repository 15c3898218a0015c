import NIOCore
import StepRunCore
import StepRunWire
import Testing

/// The byte-level examples in docs/PROTOCOL.md are exactly what the codec produces.
@Suite struct ProtocolExampleTests {
    static let stepRun = StepRun(
        id: Fixture.stepRunID, runID: Fixture.runID, step: "charge-card", status: .running,
        input: Fixture.json(#"{"amount":1200}"#),
        insertedAt: Fixture.inserted, updatedAt: Fixture.inserted)

    static let request = RequestFrame(id: 1, timeoutMs: 5000, call: .store(.beginStep(
        runID: Fixture.runID, step: "charge-card", input: Fixture.json(#"{"amount":1200}"#), recovery: nil)))

    static let response = ResponseFrame(id: 1, outcome: .success(.store(.begin(stepRun, .execute))))

    static let staleResponse = ResponseFrame(id: 2, outcome: .failure(.staleStepRun(status: .completed)))

    static func encoded(_ frame: RequestFrame) -> String {
        var buffer = ByteBuffer()
        WireCodec.encodeRequest(frame, into: &buffer)
        return Wire.hex(buffer)
    }

    static func encoded(_ frame: ResponseFrame) -> String {
        var buffer = ByteBuffer()
        WireCodec.encodeResponse(frame, into: &buffer)
        return Wire.hex(buffer)
    }

    // Keep these in step with the hex dumps in docs/PROTOCOL.md ("A byte-level example").
    static let requestHex =
        "000000380801108827a201300a100190a1b2c3d47e5f8a6b7c8d9e0f1a2b120b6368617267652d636172641a0f7b22616d6f756e74223a313230307d"
    static let responseHex =
        "0000005f0801a2015a0a560a100190a1b2c3d57000800000000000000112100190a1b2c3d47e5f8a6b7c8d9e0f1a2b1a0b6368617267652d63617264"
        + "20022a0f7b22616d6f756e74223a313230307d6080e0f982beed86036880e0f982beed86031001"
    static let staleResponseHex =
        "0000004508021241080912297374616c655f737465705f72756e3a2074686520737465702072756e20697320636f6d706c65746564"
        + "1a12120e7374616c655f737465705f72756e1803"

    @Test func beginStepRequestEncodesToTheDocumentedBytes() {
        #expect(Self.encoded(Self.request) == Self.requestHex)
    }

    @Test func beginStepResponseEncodesToTheDocumentedBytes() {
        #expect(Self.encoded(Self.response) == Self.responseHex)
    }

    @Test func staleStepRunErrorEncodesToTheDocumentedBytes() {
        #expect(Self.encoded(Self.staleResponse) == Self.staleResponseHex)
    }

    @Test func documentedBytesDecodeToTheExampleFrames() throws {
        func payload(_ hex: String) throws -> ByteBuffer {
            try Wire.payload(of: ByteBuffer(bytes: #require(Array(hex: hex))))
        }
        #expect(try WireCodec.decodeRequest(payload(Self.requestHex)) == Self.request)
        #expect(try WireCodec.decodeResponse(payload(Self.responseHex)) == Self.response)
        #expect(try WireCodec.decodeResponse(payload(Self.staleResponseHex)) == Self.staleResponse)
    }

    /// Produced once by Google's Python protobuf (7.36.2) from this repository's .proto: a
    /// schedule_steps request with id 77, timeout 250 ms, step "a" (input {"x":1}, recovery {}) and
    /// step "b" (nothing else set). An independent implementation's bytes decode as intended.
    static let pythonEncodedRequestHex =
        "00000031084d10fa01b201290a100190a1b2c3d47e5f8a6b7c8d9e0f1a2b12100a016112077b2278223a317d1a027b7d12030a0162"

    @Test func requestEncodedByAnotherProtobufImplementationDecodes() throws {
        let bytes = try #require(Array(hex: Self.pythonEncodedRequestHex))
        let frame = try WireCodec.decodeRequest(Wire.payload(of: ByteBuffer(bytes: bytes)))
        #expect(frame == RequestFrame(id: 77, timeoutMs: 250, call: .store(.scheduleSteps(runID: Fixture.runID, steps: [
            ScheduledStep(step: "a", input: Fixture.json(#"{"x":1}"#), recovery: .empty),
            ScheduledStep(step: "b", input: .empty, recovery: nil),
        ]))))
    }
}

extension Array where Element == UInt8 {
    /// Bytes from a string of hex digit pairs; nil if it is not one.
    init?(hex: String) {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            guard let next = hex.index(index, offsetBy: 2, limitedBy: hex.endIndex),
                let byte = UInt8(hex[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self = bytes
    }
}
