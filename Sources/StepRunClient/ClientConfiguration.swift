import NIOSSL
import StepRunWire

extension StepRunClient {
    /// Where the daemon listens.
    public enum Target: Sendable, Hashable, CustomStringConvertible {
        /// A co-located daemon's Unix socket.
        case unix(path: String)
        /// A remote daemon; `token` is the shared secret its operator configured (nil if auth is off).
        case tcp(host: String, port: Int, token: String?)

        /// `unix:PATH` or `tcp:HOST:PORT` (never the token).
        public var description: String {
            switch self {
            case .unix(let path): "unix:\(path)"
            case .tcp(let host, let port, _): "tcp:\(host):\(port)"
            }
        }
    }

    /// How the client behaves.
    public struct Configuration: Sendable {
        /// Sent in Hello; shows up in the daemon's logs.
        public var clientName: String
        /// Timeout for calls that do not pass one.
        public var defaultTimeout: Duration
        /// How long to wait for the connection and its Hello.
        public var connectTimeout: Duration
        /// Largest frame accepted from or sent to the daemon. Keep it at least the daemon's
        /// `max-frame-bytes` (the same 8 MiB default): the daemon guarantees every row it stores
        /// fits its own frame limit, so a smaller one here can leave large rows unreadable.
        public var maxFrameBytes: Int
        /// TLS for `.tcp` targets (nil = plain TCP). Use `TLSConfiguration.makeClientConfiguration()`
        /// and set `trustRoots` to the daemon's CA, plus a certificate chain and key if it requires one.
        public var tls: TLSConfiguration?
        /// The name the daemon's certificate is checked against (and sent as SNI), when it is not the
        /// target's host. nil: a host name is checked as itself, an IP address against the
        /// certificate's IP addresses.
        public var tlsServerName: String?

        /// The defaults: 30 s per call, 5 s to connect, 8 MiB frames, plain TCP.
        public init(
            clientName: String = "StepRunClient", defaultTimeout: Duration = .seconds(30),
            connectTimeout: Duration = .seconds(5), maxFrameBytes: Int = WireProtocol.defaultMaxFrameBytes,
            tls: TLSConfiguration? = nil, tlsServerName: String? = nil
        ) {
            self.tls = tls
            self.tlsServerName = tlsServerName
            self.clientName = clientName
            self.defaultTimeout = defaultTimeout
            self.connectTimeout = connectTimeout
            self.maxFrameBytes = maxFrameBytes
        }
    }
}
