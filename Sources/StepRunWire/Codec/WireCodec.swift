import CStepRunProto
import NIOCore
import StepRunCore

/// Encodes and decodes frames: `RequestFrame` and `ResponseFrame` ⇄ length-prefixed protobuf.
///
/// This is the only place protobuf-c packs or unpacks: every unpacked message is freed with
/// `defer` before the decode returns, and every encode builds its C message tree in an
/// `EncodeArena` released with `defer`.
public enum WireCodec {
    /// Decodes one client frame's payload (the bytes after the 4-byte length prefix).
    public static func decodeRequest(_ payload: ByteBuffer) throws(WireDecodingError) -> RequestFrame {
        try decode(
            payload, "request", "the frame is not a valid steprun.v1.Request protobuf message",
            unpack: { steprun__v1__request__unpack(nil, $0, $1) }, free: { steprun__v1__request__free_unpacked($0, nil) },
            id: { $0.pointee.id }
        ) { (request) throws(StepRunError) in
            RequestFrame(id: request.pointee.id, timeoutMs: request.pointee.timeout_ms, call: try FieldReader().call(request))
        }
    }

    /// Appends the 4-byte big-endian length and the encoded Request.
    public static func encodeRequest(_ frame: RequestFrame, into buffer: inout ByteBuffer) {
        let arena = EncodeArena()
        defer { arena.release() }
        let message = arena.request(frame)
        append(message, size: packedSize(message), into: &buffer)
    }

    /// Appends the encoded Request unless its body would exceed `maxFrameBytes` (the limit from the
    /// server's `HelloReply`): a frame over the limit would make the server close the connection,
    /// failing every call in flight on it, so the one oversized call fails here instead.
    ///
    /// - Throws: `StepRunError.invalidArgument(field: "request", …)`; nothing is written.
    public static func encodeRequest(_ frame: RequestFrame, into buffer: inout ByteBuffer, maxFrameBytes: Int) throws(StepRunError) {
        let arena = EncodeArena()
        defer { arena.release() }
        let message = arena.request(frame)
        let size = packedSize(message)
        guard size <= maxFrameBytes else {
            throw .invalidArgument(
                field: "request",
                message: "the request encodes to \(size) bytes, over the server's frame limit of \(maxFrameBytes) bytes")
        }
        append(message, size: size, into: &buffer)
    }

    /// Decodes one server frame's payload.
    public static func decodeResponse(_ payload: ByteBuffer) throws(WireDecodingError) -> ResponseFrame {
        try decode(
            payload, "response", "the frame is not a valid steprun.v1.Response protobuf message",
            unpack: { steprun__v1__response__unpack(nil, $0, $1) }, free: { steprun__v1__response__free_unpacked($0, nil) },
            id: { $0.pointee.id }
        ) { (response) throws(StepRunError) in
            let id = response.pointee.id
            if let status = response.pointee.status, status.pointee.code != StatusCode.ok.rawValue {
                return ResponseFrame(id: id, outcome: .failure(StepRunError(status: status.pointee)))
            }
            return ResponseFrame(id: id, outcome: .success(try FieldReader(checksJSON: false).reply(response)))
        }
    }

    /// Appends the 4-byte big-endian length and the encoded Response.
    public static func encodeResponse(_ frame: ResponseFrame, into buffer: inout ByteBuffer) {
        let arena = EncodeArena()
        defer { arena.release() }
        let message = response(frame, in: arena)
        append(message, size: packedSize(message), into: &buffer)
    }

    /// Appends the encoded Response, or, when its body would exceed `maxFrameBytes`, the error
    /// `oversized` makes of its size, for the same id: the client would refuse the oversized
    /// frame and lose the connection, so the one call fails instead. Returns the size refused,
    /// nil when the response went out as it was.
    @discardableResult
    public static func encodeResponse(
        _ frame: ResponseFrame, into buffer: inout ByteBuffer, maxFrameBytes: Int,
        oversized: (_ size: Int) -> StepRunError = { size in
            .resultTooLarge("result_too_large: the result encodes to \(size) bytes, over the frame limit; raise max-frame-bytes")
        }
    ) -> Int? {
        let arena = EncodeArena()
        defer { arena.release() }
        var message = response(frame, in: arena)
        var size = packedSize(message)
        var refused: Int?
        if size > maxFrameBytes {
            refused = size
            message = response(ResponseFrame(id: frame.id, outcome: .failure(oversized(size))), in: arena)
            size = packedSize(message)
        }
        append(message, size: size, into: &buffer)
        return refused
    }

    // MARK: protobuf-c

    /// Unpacks `payload`, reads it into a frame and frees the unpacked message before returning.
    /// A payload protobuf-c refuses fails as `invalidArgument(field: kind)`, with the id scanned
    /// from the bytes; a refused field, with the message's id.
    private static func decode<Message, Frame>(
        _ payload: ByteBuffer, _ kind: String, _ refusal: String,
        unpack: (Int, UnsafePointer<UInt8>?) -> UnsafeMutablePointer<Message>?,
        free: (UnsafeMutablePointer<Message>) -> Void,
        id: (UnsafeMutablePointer<Message>) -> UInt64,
        read: (UnsafeMutablePointer<Message>) throws(StepRunError) -> Frame
    ) throws(WireDecodingError) -> Frame {
        let result = payload.withUnsafeReadableBytes { bytes -> Result<Frame, WireDecodingError> in
            guard let message = unpack(bytes.count, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self)) else {
                return .failure(WireDecodingError(
                    requestID: EnvelopeIDScanner.id(in: bytes), error: .invalidArgument(field: kind, message: refusal)))
            }
            defer { free(message) }
            do throws(StepRunError) {
                return .success(try read(message))
            } catch {
                return .failure(WireDecodingError(requestID: id(message), error: error))
            }
        }
        return try result.get()
    }

    private static func response(_ frame: ResponseFrame, in arena: EncodeArena) -> UnsafeMutablePointer<Steprun__V1__Response> {
        let message = arena.message(steprun__v1__response__init)
        message.pointee.id = frame.id
        switch frame.outcome {
        case .success(let reply):
            if !arena.setResult(of: message, to: reply) {
                message.pointee.result_case = STEPRUN__V1__RESPONSE__RESULT__NOT_SET
                message.pointee.status = arena.status(.internal(
                    "the server produced a transaction result the protocol cannot carry (a read result inside a transaction)"))
            }
        case .failure(let error):
            message.pointee.status = arena.status(error)
        }
        return message
    }

    /// Every generated message starts with its `ProtobufCMessage` header, so the generic
    /// protobuf-c functions take a pointer to the whole message.
    private static func base<Message>(_ message: UnsafeMutablePointer<Message>) -> UnsafePointer<ProtobufCMessage> {
        UnsafePointer(OpaquePointer(message))
    }

    private static func packedSize<Message>(_ message: UnsafeMutablePointer<Message>) -> Int {
        protobuf_c_message_get_packed_size(base(message))
    }

    private static func append<Message>(_ message: UnsafeMutablePointer<Message>, size: Int, into buffer: inout ByteBuffer) {
        // Bodies are bounded by the frame limit long before this; a body over 4 GiB is a bug.
        precondition(size <= Int(UInt32.max), "a frame body of \(size) bytes cannot be length-prefixed")
        buffer.writeInteger(UInt32(size), endianness: .big)
        guard size > 0 else { return }
        let written = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            protobuf_c_message_pack(base(message), out.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        assert(written == size, "protobuf-c packed \(written) bytes, expected \(size)")
    }
}
