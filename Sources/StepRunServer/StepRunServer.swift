import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import StepRunCore
import StepRunWire
import Synchronization

/// The steprund network front: Unix and TCP listeners that speak the framed protocol and forward
/// each request to a `StepRunStore`.
///
/// Run it inside a `ServiceGroup`: on graceful shutdown it stops accepting, lets in-flight requests
/// finish (up to the grace period), then closes every connection.
public final class StepRunServer: Service, Sendable {
    /// The daemon's version, reported in HelloReply.
    public static let version = "0.1.0"

    /// The addresses the server actually bound.
    public struct BoundAddresses: Sendable, Hashable {
        /// The Unix socket's path, if that listener is on.
        public var unixSocketPath: String?
        /// The TCP listener's host, if that listener is on.
        public var tcpHost: String?
        /// The TCP port actually bound (the kernel's pick when the configuration said 0).
        public var tcpPort: Int?
    }

    private let context: ServerContext
    private let group: any EventLoopGroup
    private let state = Mutex(State())

    private struct State {
        var bound: BoundAddresses?
        var failure: StepRunError?
        var listeningWaiters: [CheckedContinuation<BoundAddresses, any Error>] = []
        var connections: [ObjectIdentifier: any Channel] = [:]
        var shutdownRequested = false
        var shutdownWaiter: CheckedContinuation<Void, Never>?
        /// The held `<socket>.lock` while this server owns its Unix socket path.
        var socketLock: Int32?
    }

    /// A server answering from `store`; `health` answers health calls (it should check the database).
    /// Nothing listens until `run()`.
    public init(
        configuration: ServerConfiguration, store: any StepRunStore, health: @escaping HealthCheck,
        logger: Logger, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.context = ServerContext(configuration: configuration, store: store, health: health, logger: logger)
        self.group = eventLoopGroup
    }

    /// Waits until the listeners are bound and returns their addresses (or the bind failure).
    public func listening() async throws -> BoundAddresses {
        try await withCheckedThrowingContinuation { continuation in
            let ready: Result<BoundAddresses, StepRunError>? = state.withLock { state in
                if let bound = state.bound { return .success(bound) }
                if let failure = state.failure { return .failure(failure) }
                state.listeningWaiters.append(continuation)
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }

    /// Starts a graceful shutdown, as SIGTERM would in a ServiceGroup.
    public func shutdown() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.shutdownRequested = true
            defer { state.shutdownWaiter = nil }
            return state.shutdownWaiter
        }
        waiter?.resume()
    }

    /// Binds the listeners and serves until graceful shutdown (or `shutdown()`); then stops accepting,
    /// lets in-flight requests finish within the grace period and closes every connection. Throws
    /// if a listener cannot be bound (for instance a live daemon already owns the Unix socket).
    public func run() async throws {
        let configuration = context.configuration
        let listeners: [any Channel]
        do {
            try configuration.validate()
            listeners = try await bind()
        } catch {
            let failure = (error as? StepRunError) ?? .unavailable("cannot listen: \(error)")
            settleListening(.failure(failure))
            throw failure
        }

        await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await waitForShutdownRequest()
            } onCancel: {
                shutdown()
            }
        } onGracefulShutdown: {
            self.shutdown()
        }

        context.logger.info("shutting down: no longer accepting connections")
        for listener in listeners {
            try? await listener.close()
        }
        // An inherited socket's file belongs to the service manager, which keeps it for the next start.
        if configuration.inheritedUnixSocket == nil, let path = configuration.unixSocketPath {
            try? UnixSocketFile.reclaim(path)
        }
        releaseSocketLock()
        await drainConnections()
        context.logger.info("all connections closed")
    }

    // MARK: Listening

    private func bind() async throws -> [any Channel] {
        let configuration = context.configuration
        let tls: NIOSSLContext?
        do {
            tls = try configuration.tls.map { try NIOSSLContext(configuration: $0) }
        } catch {
            throw StepRunError.invalidArgument(field: "tls", message: "cannot set up TLS: \(error)")
        }
        var listeners: [any Channel] = []
        var bound = BoundAddresses()
        do {
            if let descriptor = configuration.inheritedUnixSocket {
                let channel = try await bootstrap(.unix).withBoundSocket(descriptor).get()
                listeners.append(channel)
                bound.unixSocketPath = channel.localAddress?.pathname
                context.logger.info(
                    "listening on inherited unix socket \(bound.unixSocketPath ?? "?"); connect with StepRunClient target .unix(path:) or steprunctl --unix-socket")
            } else if let path = configuration.unixSocketPath {
                let lock = try UnixSocketFile.lock(path)
                state.withLock { $0.socketLock = lock }
                try UnixSocketFile.reclaim(path)
                let channel = try await bootstrap(.unix).bind(unixDomainSocketPath: path).get()
                listeners.append(channel)
                try UnixSocketFile.setMode(path, configuration.unixSocketMode)
                bound.unixSocketPath = path
                context.logger.info(
                    "listening on unix socket \(path) (mode \(String(configuration.unixSocketMode, radix: 8))); connect with StepRunClient target .unix(path: \"\(path)\") or steprunctl --unix-socket \(path)")
            }
            if let descriptor = configuration.inheritedTCPSocket {
                let channel = try await bootstrap(.tcp, tls: tls).withBoundSocket(descriptor).get()
                listeners.append(channel)
                bound.tcpHost = channel.localAddress?.ipAddress
                bound.tcpPort = channel.localAddress?.port
            } else if let tcp = configuration.tcp {
                let channel = try await bootstrap(.tcp, tls: tls).bind(host: tcp.host, port: tcp.port).get()
                listeners.append(channel)
                bound.tcpHost = tcp.host
                bound.tcpPort = channel.localAddress?.port
            }
            if bound.tcpPort != nil {
                context.logger.info(
                    "listening on tcp \(bound.tcpHost ?? "?"):\(bound.tcpPort ?? 0); connect with StepRunClient target .tcp(host:port:token:) or steprunctl --tcp \(bound.tcpHost ?? "?"):\(bound.tcpPort ?? 0)\(configuration.allowInsecureTCP ? " (no token: authentication is off)" : " --token-file FILE")",
                    metadata: [
                        "inherited": "\(configuration.inheritedTCPSocket != nil)",
                        "auth": "\(configuration.allowInsecureTCP ? "none (insecure)" : "token")",
                        "tls": "\(configuration.tls == nil ? "off" : "on")",
                    ])
            }
        } catch {
            for listener in listeners { try? await listener.close() }
            releaseSocketLock()
            throw error
        }
        settleListening(.success(bound))
        return listeners
    }

    /// Records how binding ended and answers everyone waiting in `listening()`.
    private func settleListening(_ outcome: Result<BoundAddresses, StepRunError>) {
        let waiters = state.withLock { state in
            switch outcome {
            case .success(let bound): state.bound = bound
            case .failure(let failure): state.failure = failure
            }
            defer { state.listeningWaiters = [] }
            return state.listeningWaiters
        }
        waiters.forEach { $0.resume(with: outcome.mapError { $0 as any Error }) }
    }

    private func releaseSocketLock() {
        if let lock = state.withLock({ state in defer { state.socketLock = nil }; return state.socketLock }) {
            UnixSocketFile.unlock(lock)
        }
    }

    private func bootstrap(_ transport: Transport, tls: NIOSSLContext? = nil) -> ServerBootstrap {
        let context = self.context
        // A zero idle timeout means "never": IdleStateHandler would fire on every loop tick.
        let idle: TimeAmount? = context.configuration.idleTimeout > .zero ? TimeAmount(context.configuration.idleTimeout) : nil
        let configuration = context.configuration
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: transport == .tcp ? 1 : 0)
            .childChannelOption(.socketOption(.tcp_nodelay), value: transport == .tcp ? 1 : 0)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [self] channel in
                track(channel)
                let admitted: EventLoopFuture<Void>
                if transport == .unix, configuration.allowedPeerUIDs != nil || configuration.allowedPeerGIDs != nil {
                    admitted = PeerCredentials.of(channel).flatMapThrowing { peer in
                        guard peer.isAllowed(uids: configuration.allowedPeerUIDs, gids: configuration.allowedPeerGIDs) else {
                            context.logger.warning(
                                "unix peer refused by the allow-list",
                                metadata: ["uid": "\(peer.uid)", "gid": "\(peer.gid)", "pid": "\(peer.pid)"])
                            throw PeerNotAllowedError()
                        }
                    }
                } else {
                    admitted = channel.eventLoop.makeSucceededVoidFuture()
                }
                return admitted.flatMapThrowing {
                    let pipeline = channel.pipeline.syncOperations
                    if let tls {
                        try pipeline.addHandler(NIOSSLServerHandler(context: tls))
                    }
                    // Reads stop while the peer is not taking its answers, so a client that pipelines
                    // requests without reading cannot make the daemon buffer responses without bound.
                    try pipeline.addHandler(BackPressureHandler())
                    try pipeline.addHandler(ByteToMessageHandler(
                        FrameDecoder(maxFrameBytes: context.configuration.maxFrameBytes, refusesTLSBeforeFirstFrame: true)))
                    // After the frame decoder, so only complete frames count as activity: a peer that
                    // trickles a frame a byte at a time is idle, not busy (PROTOCOL.md section 3).
                    if let idle {
                        try pipeline.addHandler(IdleStateHandler(readTimeout: idle))
                    }
                    try pipeline.addHandler(ConnectionHandler(server: context, transport: transport))
                }
            }
    }

    // MARK: Shutdown

    private func waitForShutdownRequest() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let requested = state.withLock { state in
                if state.shutdownRequested { return true }
                state.shutdownWaiter = continuation
                return false
            }
            if requested { continuation.resume() }
        }
    }

    private func track(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        state.withLock { $0.connections[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in
            _ = state.withLock { $0.connections.removeValue(forKey: key) }
        }
    }

    /// Asks every connection to finish its in-flight requests and close; forces them after the grace period.
    private func drainConnections() async {
        let connections = state.withLock { Array($0.connections.values) }
        guard !connections.isEmpty else { return }
        context.logger.info("waiting for in-flight requests", metadata: ["connections": "\(connections.count)"])
        for channel in connections {
            channel.pipeline.fireUserInboundEventTriggered(ServerDrainingEvent())
        }
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                for channel in connections { try? await channel.closeFuture.get() }
                return true
            }
            // Ends early if run() is cancelled: cancellation means stop now, not drain.
            group.addTask { [grace = context.configuration.shutdownGracePeriod] in
                try? await Task.sleep(for: grace)
                return false
            }
            let drained = await group.next() ?? true
            if !drained {
                // Closed here, inside the group: the group cannot finish while the task waiting
                // for the connections still waits.
                context.logger.warning("grace period over: closing connections with requests still in flight")
                for channel in connections { channel.close(promise: nil) }
            }
            group.cancelAll()
        }
    }
}
