import NIOCore
import NIOPosix
import NIOSSL
import StepRunCore
import StepRunWire
import Synchronization

/// One established, handshaken connection to steprund, shared by every call of a client.
final class ClientConnection: Sendable {
    let channel: any Channel
    let hello: HelloReply
    private let handler: NIOLoopBound<ResponseHandler>
    private let nextID: Atomic<UInt64>

    private init(channel: any Channel, handler: NIOLoopBound<ResponseHandler>, hello: HelloReply, nextID: UInt64) {
        self.channel = channel
        self.handler = handler
        self.hello = hello
        self.nextID = Atomic(nextID)
    }

    var isActive: Bool { channel.isActive }

    /// Connects and performs the Hello; throws `StepRunError` (`.unavailable` if nothing listens).
    static func connect(
        to target: StepRunClient.Target, configuration: StepRunClient.Configuration, eventLoop: any EventLoop
    ) async throws -> ClientConnection {
        let tls: (context: NIOSSLContext, hostname: String?)?
        if case .tcp(let host, _, _) = target, let tlsConfiguration = configuration.tls {
            do {
                let isAddress = host.contains(":") || host.split(separator: ".").allSatisfy { UInt8($0) != nil }
                tls = (try NIOSSLContext(configuration: tlsConfiguration), configuration.tlsServerName ?? (isAddress ? nil : host))
            } catch {
                throw StepRunError.invalidArgument(field: "tls", message: "cannot set up TLS: \(error)")
            }
        } else {
            tls = nil
        }
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls {
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: tls.hostname))
                    }
                    try pipeline.addHandler(ByteToMessageHandler(FrameDecoder(maxFrameBytes: configuration.maxFrameBytes)))
                    try pipeline.addHandler(ResponseHandler(maxFrameBytes: configuration.maxFrameBytes))
                }
            }
        let channel: any Channel
        let token: String?
        do {
            switch target {
            case .unix(let path):
                channel = try await bootstrap.connect(unixDomainSocketPath: path).get()
                token = nil
            case .tcp(let host, let port, let secret):
                channel = try await bootstrap.connect(host: host, port: port).get()
                token = secret
            }
        } catch {
            throw StepRunError.unavailable("cannot connect to steprund at \(target): \(error)")
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: ResponseHandler.self), eventLoop: channel.eventLoop)
        }.get()
        let hello = Hello(clientName: configuration.clientName, token: token)
        let deadline = ContinuousClock.now.advanced(by: configuration.connectTimeout)
        let reply: Reply
        do {
            reply = try await send(.hello(hello), id: 1, timeoutMs: 0, deadline: deadline, channel: channel, handler: handler)
        } catch StepRunError.deadlineExceeded {
            try? await channel.close()
            // Nothing was sent yet, so this is the daemon being unreachable, not a call that timed out.
            throw StepRunError.unavailable("steprund at \(target) did not answer Hello within \(configuration.connectTimeout)")
        } catch {
            try? await channel.close()
            throw error
        }
        guard case .hello(let helloReply) = reply else {
            try? await channel.close()
            throw StepRunError.internal("steprund answered Hello with \(reply)")
        }
        // A frame over the server's limit would make it close the connection under every call in
        // flight; with the server's limit known, an oversized call fails alone, before it is sent.
        let requestLimit = min(configuration.maxFrameBytes, Int(helloReply.maxFrameBytes))
        try await channel.eventLoop.submit { handler.value.limitRequests(to: requestLimit) }.get()
        return ClientConnection(channel: channel, handler: handler, hello: helloReply, nextID: 2)
    }

    /// Sends one call and waits for its answer.
    func call(_ call: Call, deadline: ContinuousClock.Instant) async throws -> Reply {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let remaining = deadline - .now
        let milliseconds = max(1, remaining.inMilliseconds)
        return try await Self.send(call, id: id, timeoutMs: UInt32(clamping: milliseconds), deadline: deadline, channel: channel, handler: handler)
    }

    private static func send(
        _ call: Call, id: UInt64, timeoutMs: UInt32, deadline: ContinuousClock.Instant, channel: any Channel,
        handler: NIOLoopBound<ResponseHandler>
    ) async throws -> Reply {
        let frame = RequestFrame(id: id, timeoutMs: timeoutMs, call: call)
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                // A task running on the loop (see `EventLoopTaskExecutor`) sends without a hop.
                if channel.eventLoop.inEventLoop {
                    handler.value.send(frame, deadline: deadline, continuation: continuation)
                } else {
                    channel.eventLoop.execute {
                        handler.value.send(frame, deadline: deadline, continuation: continuation)
                    }
                }
                // Cancelled before this point, the handler below ran first and found nothing to
                // cancel; this second request runs after the send on the same loop.
                if Task.isCancelled {
                    channel.eventLoop.execute { handler.value.cancel(id: frame.id) }
                }
            }
        } onCancel: {
            channel.eventLoop.execute { handler.value.cancel(id: id) }
        }
    }

    func close() async {
        try? await channel.close()
    }
}
