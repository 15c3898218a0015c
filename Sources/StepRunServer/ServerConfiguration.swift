import NIOSSL
import StepRunCore
import StepRunWire

/// Everything the server needs to know about its listeners and limits.
public struct ServerConfiguration: Sendable {
    /// Where the Unix socket is created (mode `unixSocketMode`); nil turns the Unix listener off.
    public var unixSocketPath: String?
    /// File mode of the Unix socket.
    public var unixSocketMode: UInt16
    /// TCP listener address; nil turns TCP off. Port 0 picks a free port (see `StepRunServer.tcpPort`).
    public var tcp: (host: String, port: Int)?
    /// The token TCP clients must present in Hello. Nil requires `allowInsecureTCP`.
    public var tcpToken: String?
    /// Accept TCP clients without a token. Only for trusted networks.
    public var allowInsecureTCP: Bool
    /// Largest frame body accepted or sent.
    public var maxFrameBytes: Int
    /// Payload and list limits, checked before any SQL.
    public var storeLimits: StoreLimits
    /// Requests one connection may have in flight; the next gets `RESOURCE_EXHAUSTED`.
    public var maxInFlightPerConnection: Int
    /// Open connections across both listeners; more are answered with an error and closed.
    public var maxConnections: Int
    /// Deadline for a request that sends `timeout_ms = 0`.
    public var defaultRequestTimeout: Duration
    /// Upper bound on any request's `timeout_ms` (never below `defaultRequestTimeout`).
    public var maxRequestTimeout: Duration
    /// Time a new connection has to complete its Hello.
    public var handshakeTimeout: Duration
    /// A connection with nothing in flight and nothing received for this long is closed;
    /// `.zero` keeps idle connections open indefinitely.
    public var idleTimeout: Duration
    /// On shutdown, how long in-flight requests may take before connections are closed anyway.
    public var shutdownGracePeriod: Duration
    /// Reported in HelloReply.
    public var serverName: String
    /// TLS for the TCP listener (nil = plain TCP). Set `certificateVerification` and `trustRoots`
    /// on it to require client certificates.
    public var tls: TLSConfiguration?
    /// Unix-socket peers allowed by user id (SO_PEERCRED), on top of the socket file's permissions;
    /// nil allows any user the file mode lets in. A peer passes if its uid or its gid is allowed.
    public var allowedPeerUIDs: Set<UInt32>?
    /// Unix-socket peers allowed by group id; see `allowedPeerUIDs`.
    public var allowedPeerGIDs: Set<UInt32>?
    /// An already-listening Unix socket handed over by the service manager (socket activation);
    /// used instead of binding `unixSocketPath`.
    public var inheritedUnixSocket: Int32?
    /// An already-listening TCP socket handed over by the service manager; used instead of binding `tcp`.
    public var inheritedTCPSocket: Int32?

    /// Settings with the documented defaults; at least one listener must be given (see `validate()`).
    public init(
        unixSocketPath: String? = nil, unixSocketMode: UInt16 = 0o660, tcp: (host: String, port: Int)? = nil,
        tcpToken: String? = nil, allowInsecureTCP: Bool = false, maxFrameBytes: Int = WireProtocol.defaultMaxFrameBytes,
        storeLimits: StoreLimits = .default, maxInFlightPerConnection: Int = 128, maxConnections: Int = 4096,
        defaultRequestTimeout: Duration = .seconds(30), maxRequestTimeout: Duration = .seconds(300),
        handshakeTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(300),
        shutdownGracePeriod: Duration = .seconds(30), serverName: String = "steprund \(StepRunServer.version)"
    ) {
        self.unixSocketPath = unixSocketPath
        self.unixSocketMode = unixSocketMode
        self.tcp = tcp
        self.tcpToken = tcpToken
        self.allowInsecureTCP = allowInsecureTCP
        self.maxFrameBytes = maxFrameBytes
        self.storeLimits = storeLimits
        self.maxInFlightPerConnection = maxInFlightPerConnection
        self.maxConnections = maxConnections
        self.defaultRequestTimeout = defaultRequestTimeout
        self.maxRequestTimeout = maxRequestTimeout
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.shutdownGracePeriod = shutdownGracePeriod
        self.serverName = serverName
    }

    /// Refuses settings that cannot work, before anything binds.
    /// The largest `maxFrameBytes` accepted.
    public static let maxFrameBytesLimit = 1 << 30

    public func validate() throws(StepRunError) {
        guard unixSocketPath != nil || tcp != nil || inheritedUnixSocket != nil || inheritedTCPSocket != nil else {
            throw .invalidArgument(field: "listeners", message: "both the Unix socket and TCP are turned off; enable at least one")
        }
        if (tcp != nil || inheritedTCPSocket != nil) && (tcpToken ?? "").isEmpty && !allowInsecureTCP {
            throw .invalidArgument(
                field: "token", message: "TCP needs a token (--token-file) or an explicit --insecure-no-auth")
        }
        guard maxFrameBytes >= 1024, maxInFlightPerConnection >= 1, maxConnections >= 1 else {
            throw .invalidArgument(field: "limits", message: "max frame bytes must be at least 1024, in-flight and connection limits at least 1")
        }
        // Postgres takes no message over 1 GiB, and payloads reach it with 32-bit lengths.
        guard maxFrameBytes <= Self.maxFrameBytesLimit else {
            throw .invalidArgument(field: "max_frame_bytes", message: "max frame bytes must be at most \(Self.maxFrameBytesLimit) (1 GiB)")
        }
        guard defaultRequestTimeout > .zero, maxRequestTimeout > .zero else {
            throw .invalidArgument(field: "request_timeout", message: "request timeouts must be above zero")
        }
        guard handshakeTimeout > .zero, idleTimeout >= .zero, shutdownGracePeriod >= .zero else {
            throw .invalidArgument(
                field: "timeouts", message: "the handshake timeout must be above zero; idle timeout and shutdown grace must not be negative")
        }
        guard storeLimits.maxPayloadBytes >= 2 else {
            throw .invalidArgument(field: "max_payload_bytes", message: "the payload limit must be at least 2 bytes (\"{}\")")
        }
        guard storeLimits.maxPayloadBytes <= StoreLimits.maxPayloadBytesLimit else {
            throw .invalidArgument(
                field: "max_payload_bytes",
                message: "max payload bytes must be at most \(StoreLimits.maxPayloadBytesLimit) (32 MiB): Postgres builds jsonb "
                    + "at up to 4 times its text and cannot build much larger ones")
        }
        // Every row the store accepts must be readable in one response (SPEC.md, Entities); a
        // limit pair that breaks this would let a write commit and its row never be read again.
        let largestRow = storeLimits.maxStepRunBytes
        guard largestRow <= maxFrameBytes else {
            throw .invalidArgument(
                field: "max_frame_bytes",
                message: "max frame bytes \(maxFrameBytes) cannot carry the largest step run max payload bytes "
                    + "\(storeLimits.maxPayloadBytes) allows (six JSON fields at the limit plus the rest: \(largestRow) bytes); "
                    + "raise max frame bytes to at least \(largestRow) or lower max payload bytes to at most "
                    + "\(StoreLimits.maxPayloadBytes(fittingFrame: maxFrameBytes))")
        }
    }

    /// `storeLimits` as the store behind this server must apply them: with the response budget
    /// of one frame, so a `transaction` whose results would not fit is refused before it commits.
    public var storeLimitsWithResponseBudget: StoreLimits {
        var limits = storeLimits
        limits.maxResponseBytes = maxFrameBytes
        return limits
    }
}
