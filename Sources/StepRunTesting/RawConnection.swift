import NIOCore
import NIOPosix
import StepRunCore
import StepRunWire

/// A bare socket to the daemon, for sending bytes no well-behaved client would.
public struct RawConnection {
    private let channel: any Channel
    private var inbound: AsyncStream<ByteBuffer>.Iterator

    /// Where to connect.
    public enum Target: Sendable {
        case unix(path: String)
        case tcp(port: Int)
    }

    public static func connect(_ target: Target) async throws -> RawConnection {
        let (frames, sink) = AsyncStream.makeStream(of: ByteBuffer.self)
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: 64 << 20)))
                try channel.pipeline.syncOperations.addHandler(FrameCollector(sink: sink))
            }
        }
        let channel = switch target {
        case .unix(let path): try await bootstrap.connect(unixDomainSocketPath: path).get()
        case .tcp(let port): try await bootstrap.connect(host: "127.0.0.1", port: port).get()
        }
        return RawConnection(channel: channel, inbound: frames.makeAsyncIterator())
    }

    /// Writes raw bytes exactly as given.
    public func write(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Writes one frame: the 4-byte length then the body.
    public func writeFrame(_ body: [UInt8]) async throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(body.count))
        buffer.writeBytes(body)
        try await channel.writeAndFlush(buffer)
    }

    public func send(_ frame: RequestFrame) async throws {
        var buffer = ByteBuffer()
        WireCodec.encodeRequest(frame, into: &buffer)
        try await channel.writeAndFlush(buffer)
    }

    /// The next response, or nil when the daemon closed the connection.
    public mutating func receive() async throws -> ResponseFrame? {
        guard let payload = await inbound.next() else { return nil }
        return try WireCodec.decodeResponse(payload)
    }

    /// The next response's body as sent (for checks of byte order the decoded form hides), or nil
    /// when the daemon closed the connection.
    public mutating func receiveBody() async -> [UInt8]? {
        await inbound.next().map { Array($0.readableBytesView) }
    }

    /// Completes the handshake; the connection is then ready for requests.
    public mutating func hello(token: String?) async throws {
        try await send(RequestFrame(id: 1, call: .hello(Hello(clientName: "raw", token: token))))
        guard case .success(.hello)? = try await receive()?.outcome else {
            throw StepRunError.internal("handshake failed")
        }
    }

    public func close() async {
        try? await channel.close()
    }
}

/// Hands each frame the daemon sends to a stream; the stream ends when the connection does.
private final class FrameCollector: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let sink: AsyncStream<ByteBuffer>.Continuation

    init(sink: AsyncStream<ByteBuffer>.Continuation) {
        self.sink = sink
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        sink.yield(unwrapInboundIn(data))
    }

    func channelInactive(context: ChannelHandlerContext) {
        sink.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Just enough protobuf encoding to build malformed requests by hand.
public enum Proto {
    public static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
        return bytes
    }

    public static func int(_ field: Int, _ value: UInt64) -> [UInt8] {
        varint(UInt64(field << 3)) + varint(value)
    }

    public static func bytes(_ field: Int, _ value: [UInt8]) -> [UInt8] {
        varint(UInt64(field << 3 | 2)) + varint(UInt64(value.count)) + value
    }

    /// The length-delimited fields numbered `field` at the top level of `message`, in wire order
    /// (skipping varints and fixed-size fields); nil if the bytes are not protobuf.
    public static func lengthDelimited(_ field: Int, in message: [UInt8]) -> [[UInt8]]? {
        var found: [[UInt8]] = []
        var position = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while position < message.count, shift < 64 {
                let byte = message[position]
                position += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while position < message.count {
            guard let tag = varint() else { return nil }
            switch tag & 7 {
            case 0: guard varint() != nil else { return nil }
            case 1: position += 8
            case 5: position += 4
            case 2:
                guard let length = varint(), position + Int(length) <= message.count else { return nil }
                if Int(tag >> 3) == field { found.append(Array(message[position..<position + Int(length)])) }
                position += Int(length)
            default: return nil
            }
        }
        return position == message.count ? found : nil
    }

    /// `Request { id, begin_step { run_id, step, input } }` with the given raw fields.
    public static func beginStep(id: UInt64, runID: [UInt8]?, step: [UInt8]?, input: [UInt8]?) -> [UInt8] {
        var body: [UInt8] = []
        if let runID { body += bytes(1, runID) }
        if let step { body += bytes(2, step) }
        if let input { body += bytes(3, input) }
        return int(1, id) + bytes(20, body)
    }
}
