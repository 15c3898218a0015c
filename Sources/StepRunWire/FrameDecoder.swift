import NIOCore

/// Splits a byte stream into frame payloads (4-byte big-endian length prefix). Never trusts a length it
/// has not bounded: a length over `maxFrameBytes` throws `FrameTooLargeError` before reading the body.
public struct FrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    /// The largest frame body accepted, in bytes (not counting the length prefix).
    public let maxFrameBytes: Int

    /// Until the first frame is delivered, a TLS record header where its length belongs is refused
    /// whatever the limit (see `startsWithTLSRecord`). The daemon sets it: its first frame is a
    /// small Hello, never a frame of 350 MB or more.
    private var refusesTLSBeforeFirstFrame: Bool

    public init(maxFrameBytes: Int, refusesTLSBeforeFirstFrame: Bool = false) {
        precondition(maxFrameBytes >= 0, "maxFrameBytes must not be negative")
        self.maxFrameBytes = maxFrameBytes
        self.refusesTLSBeforeFirstFrame = refusesTLSBeforeFirstFrame
    }

    /// Takes one complete frame's payload off the front of `buffer`, or returns nil (consuming
    /// nothing) when the buffer does not yet hold a whole frame.
    ///
    /// - Throws: `FrameTooLargeError` as soon as the length prefix is readable and over the limit.
    public func nextFrame(from buffer: inout ByteBuffer) throws(FrameTooLargeError) -> ByteBuffer? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return nil
        }
        // Compared as UInt64 so a length near UInt32.max cannot overflow on any platform.
        guard UInt64(length) <= UInt64(maxFrameBytes) else {
            throw FrameTooLargeError(length: Int(length), limit: maxFrameBytes, looksLikeTLS: Self.startsWithTLSRecord(buffer))
        }
        guard buffer.readableBytes - WireProtocol.lengthPrefixBytes >= Int(length) else {
            return nil
        }
        buffer.moveReaderIndex(forwardBy: WireProtocol.lengthPrefixBytes)
        return buffer.readSlice(length: Int(length))
    }

    /// True when the bytes where a frame length was expected are a TLS record header: content type
    /// handshake (0x16, a ClientHello) or alert (0x15, a server refusing plain bytes), then record
    /// version 3.x. Read as a length that is over 350 MB, so asked of a length already over the limit
    /// it can never misread a frame the limit allows; a limit of 350 MB or more (up to 1 GiB) would
    /// let a ClientHello wait for its "body", so the daemon also asks it of a connection's first frame.
    static func startsWithTLSRecord(_ buffer: ByteBuffer) -> Bool {
        guard let header = buffer.getBytes(at: buffer.readerIndex, length: 3) else { return false }
        return (header[0] == 0x15 || header[0] == 0x16) && header[1] == 0x03 && header[2] <= 0x04
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if refusesTLSBeforeFirstFrame, Self.startsWithTLSRecord(buffer) {
            let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self).map(Int.init) ?? 0
            throw FrameTooLargeError(length: length, limit: maxFrameBytes, looksLikeTLS: true)
        }
        guard let frame = try nextFrame(from: &buffer) else { return .needMoreData }
        refusesTLSBeforeFirstFrame = false
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // Frames that arrived whole before the end are still delivered; a partial frame left over is
        // reported by ByteToMessageHandler as leftover data.
        try decode(context: context, buffer: &buffer)
    }
}

/// A frame announced a body larger than the limit. The stream cannot be resynchronised after this,
/// so the connection must be closed.
public struct FrameTooLargeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The length the frame's prefix announced.
    public var length: Int
    /// The limit it exceeded.
    public var limit: Int
    /// The "length" was the start of a TLS record: the peer speaks TLS and this side does not, or the
    /// other way round. Worth its own message, since "a frame of 352518400 bytes" explains nothing.
    public var looksLikeTLS: Bool

    public init(length: Int, limit: Int, looksLikeTLS: Bool = false) {
        self.length = length
        self.limit = limit
        self.looksLikeTLS = looksLikeTLS
    }

    public var description: String {
        looksLikeTLS
            ? "the peer sent a TLS record where a frame length was expected"
            : "frame of \(length) bytes exceeds the limit of \(limit) bytes"
    }
}
