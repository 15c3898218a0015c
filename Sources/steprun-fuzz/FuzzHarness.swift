import NIOCore
import StepRunCore
import StepRunWire

/// Feeds arbitrary bytes through everything the daemon does with input before any SQL runs:
/// framing, protobuf-c unpacking, conversion, validation — and checks one property on the way:
/// a request that decodes must survive re-encoding unchanged.
enum FuzzHarness {
    static let maxFrameBytes = 1 << 20

    static func run(_ bytes: UnsafeBufferPointer<UInt8>) {
        // As a byte stream: split into frames the way the server's FrameDecoder does.
        var stream = ByteBuffer(bytes: bytes)
        let decoder = FrameDecoder(maxFrameBytes: maxFrameBytes)
        var frames = 0
        while frames < 64, let frame = try? decoder.nextFrame(from: &stream) {
            check(frame)
            frames += 1
        }
        // As one frame body: reaches the protobuf decoder with no length prefix to get right.
        check(ByteBuffer(bytes: bytes))
    }

    private static func check(_ payload: ByteBuffer) {
        if let frame = try? WireCodec.decodeRequest(payload) {
            if case .store(let request) = frame.call {
                _ = try? request.validate(limits: .default)
            }
            var encoded = ByteBuffer()
            WireCodec.encodeRequest(frame, into: &encoded)
            encoded.moveReaderIndex(forwardBy: WireProtocol.lengthPrefixBytes)
            guard let again = try? WireCodec.decodeRequest(encoded), again == frame else {
                fatalError("a decoded request changed when encoded and decoded again: \(frame)")
            }
        }
        // The client's side of the same bytes.
        if let response = try? WireCodec.decodeResponse(payload) {
            var encoded = ByteBuffer()
            WireCodec.encodeResponse(response, into: &encoded)
        }
    }
}

/// libFuzzer's entry point (built with `-sanitize=fuzzer`; see scripts/fuzz).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzHarness.run(UnsafeBufferPointer(start: data, count: size))
    return 0
}
