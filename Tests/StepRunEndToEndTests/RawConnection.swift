import NIOCore
import NIOPosix
import StepRunCore
import StepRunWire

/// A bare socket to the daemon, for sending bytes no well-behaved client would.
struct RawConnection {
    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator

    static func connect(_ daemon: TestDaemon, _ transport: Transport) async throws -> RawConnection {
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: 64 << 20)))
                return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
            }
        }
        let channel = switch transport {
        case .unix: try await bootstrap.connect(unixDomainSocketPath: daemon.unixPath, channelInitializer: initializer)
        case .tcp: try await bootstrap.connect(host: "127.0.0.1", port: daemon.tcpPort, channelInitializer: initializer)
        }
        return RawConnection(channel: channel, inbound: channel.inbound.makeAsyncIterator())
    }

    /// Writes raw bytes exactly as given.
    func write(_ bytes: [UInt8]) async throws {
        try await channel.outbound.write(ByteBuffer(bytes: bytes))
    }

    /// Writes one frame: the 4-byte length then the body.
    func writeFrame(_ body: [UInt8]) async throws {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(body.count))
        buffer.writeBytes(body)
        try await channel.outbound.write(buffer)
    }

    func send(_ frame: RequestFrame) async throws {
        var buffer = ByteBuffer()
        WireCodec.encodeRequest(frame, into: &buffer)
        try await channel.outbound.write(buffer)
    }

    /// The next response, or nil when the daemon closed the connection.
    mutating func receive() async throws -> ResponseFrame? {
        guard let payload = try await inbound.next() else { return nil }
        return try WireCodec.decodeResponse(payload)
    }

    /// Completes the handshake; the connection is then ready for requests.
    mutating func hello(token: String?) async throws {
        try await send(RequestFrame(id: 1, call: .hello(Hello(clientName: "raw", token: token))))
        guard case .success(.hello)? = try await receive()?.outcome else {
            throw StepRunError.internal("handshake failed")
        }
    }

    func close() async {
        try? await channel.channel.close()
    }
}

/// Just enough protobuf encoding to build malformed requests by hand.
enum Proto {
    static func varint(_ value: UInt64) -> [UInt8] {
        var value = value
        var bytes: [UInt8] = []
        while value >= 0x80 {
            bytes.append(UInt8(value & 0x7F) | 0x80)
            value >>= 7
        }
        bytes.append(UInt8(value))
        return bytes
    }

    static func int(_ field: Int, _ value: UInt64) -> [UInt8] {
        varint(UInt64(field << 3)) + varint(value)
    }

    static func bytes(_ field: Int, _ value: [UInt8]) -> [UInt8] {
        varint(UInt64(field << 3 | 2)) + varint(UInt64(value.count)) + value
    }

    /// `Request { id, begin_step { run_id, step, input } }` with the given raw fields.
    static func beginStep(id: UInt64, runID: [UInt8]?, step: [UInt8]?, input: [UInt8]?) -> [UInt8] {
        var body: [UInt8] = []
        if let runID { body += bytes(1, runID) }
        if let step { body += bytes(2, step) }
        if let input { body += bytes(3, input) }
        return int(1, id) + bytes(20, body)
    }
}
