import NIOCore
import StepRunCore
import StepRunWire
import Testing

/// FrameDecoder splits a byte stream at length prefixes and never trusts an unbounded length.
@Suite struct FrameDecoderTests {
    let decoder = FrameDecoder(maxFrameBytes: 64)

    func frame(_ body: [UInt8]) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(body.count), endianness: .big)
        buffer.writeBytes(body)
        return Array(buffer.readableBytesView)
    }

    func drain(_ buffer: inout ByteBuffer) throws -> [[UInt8]] {
        var frames: [[UInt8]] = []
        while let frame = try decoder.nextFrame(from: &buffer) {
            frames.append(Array(frame.readableBytesView))
        }
        return frames
    }

    @Test func wholeFrameIsDelivered() throws {
        var buffer = ByteBuffer(bytes: frame([1, 2, 3]))
        #expect(try drain(&buffer) == [[1, 2, 3]])
        #expect(buffer.readableBytes == 0)
    }

    @Test func severalFramesInOneBufferAreDeliveredInOrder() throws {
        var buffer = ByteBuffer(bytes: frame([1]) + frame([]) + frame([2, 3]) + frame(Array(repeating: 9, count: 64)))
        #expect(try drain(&buffer) == [[1], [], [2, 3], Array(repeating: 9, count: 64)])
    }

    @Test func partialLengthPrefixWaitsAndConsumesNothing() throws {
        var buffer = ByteBuffer(bytes: [0, 0, 0])
        #expect(try decoder.nextFrame(from: &buffer) == nil)
        #expect(buffer.readableBytes == 3)
    }

    @Test func partialBodyWaitsAndConsumesNothing() throws {
        var buffer = ByteBuffer(bytes: Array(frame([1, 2, 3, 4]).dropLast()))
        #expect(try decoder.nextFrame(from: &buffer) == nil)
        #expect(buffer.readableBytes == 7)
    }

    @Test func frameArrivingOneByteAtATimeIsDeliveredOnceComplete() throws {
        let bytes = frame([5, 6, 7]) + frame([8])
        var buffer = ByteBuffer()
        var frames: [[UInt8]] = []
        for byte in bytes {
            buffer.writeInteger(byte)
            frames += try drain(&buffer)
        }
        #expect(frames == [[5, 6, 7], [8]])
    }

    @Test func trailingPartialFrameStaysBuffered() throws {
        var buffer = ByteBuffer(bytes: frame([1]) + [0, 0, 0, 2, 7])
        #expect(try drain(&buffer) == [[1]])
        #expect(Array(buffer.readableBytesView) == [0, 0, 0, 2, 7])
    }

    @Test func lengthOverTheLimitFailsBeforeTheBodyArrives() {
        var buffer = ByteBuffer(bytes: [0, 0, 0, 65])
        #expect(throws: FrameTooLargeError(length: 65, limit: 64)) {
            try decoder.nextFrame(from: &buffer)
        }
    }

    @Test func maximalLengthPrefixIsRefusedWithoutOverflow() {
        var buffer = ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF])
        #expect(throws: FrameTooLargeError(length: Int(UInt32.max), limit: 64)) {
            try decoder.nextFrame(from: &buffer)
        }
    }

    @Test func frameOfExactlyTheLimitIsAccepted() throws {
        var buffer = ByteBuffer(bytes: frame(Array(repeating: 1, count: 64)))
        #expect(try drain(&buffer).first?.count == 64)
    }

    @Test func defaultLimitIsEightMebibytes() {
        #expect(WireProtocol.defaultMaxFrameBytes == 8_388_608)
    }

    @Test func encodedFramesSplitBackIntoTheirPayloads() throws {
        var stream = ByteBuffer()
        let frames = (1...3).map { RequestFrame(id: UInt64($0), call: .store(.completedSteps(runID: Fixture.runID))) }
        for frame in frames {
            WireCodec.encodeRequest(frame, into: &stream)
        }
        let splitter = FrameDecoder(maxFrameBytes: WireProtocol.defaultMaxFrameBytes)
        var decoded: [RequestFrame] = []
        while let payload = try splitter.nextFrame(from: &stream) {
            decoded.append(try WireCodec.decodeRequest(payload))
        }
        #expect(decoded == frames)
    }
}

/// The size-checked encoders keep oversized frames off the connection.
@Suite struct FrameLimitEncodingTests {
    static let big = Fixture.json("{\"blob\":\"" + String(repeating: "x", count: 2000) + "\"}")

    @Test func oversizedRequestIsRefusedAndNothingIsWritten() {
        var buffer = ByteBuffer()
        let frame = RequestFrame(id: 1, call: .store(.completeStep(stepRunID: Fixture.stepRunID, output: Self.big)))
        #expect(throws: StepRunError.self) {
            try WireCodec.encodeRequest(frame, into: &buffer, maxFrameBytes: 1000)
        }
        #expect(buffer.readableBytes == 0)
    }

    @Test func requestWithinTheLimitIsWritten() throws {
        var buffer = ByteBuffer()
        let frame = RequestFrame(id: 1, call: .store(.completeStep(stepRunID: Fixture.stepRunID, output: Self.big)))
        try WireCodec.encodeRequest(frame, into: &buffer, maxFrameBytes: 4000)
        #expect(try WireCodec.decodeRequest(Wire.payload(of: buffer)) == frame)
    }

    @Test func oversizedResponseBecomesResultTooLargeForTheSameID() throws {
        var buffer = ByteBuffer()
        let frame = ResponseFrame(id: 31, outcome: .success(.store(.outputs(Array(repeating: Self.big, count: 3)))))
        WireCodec.encodeResponse(frame, into: &buffer, maxFrameBytes: 4000)
        let decoded = try WireCodec.decodeResponse(Wire.payload(of: buffer))
        #expect(decoded.id == 31)
        guard case .failure(let error) = decoded.outcome else {
            Issue.record("expected an error, got \(decoded)")
            return
        }
        #expect(error.code == .failedPrecondition && error.reason == "result_too_large")
    }
}
