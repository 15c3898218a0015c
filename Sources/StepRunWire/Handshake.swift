/// The first frame of every connection: who the client is and how it authenticates.
public struct Hello: Sendable, Hashable {
    /// The protocol version the client speaks.
    public var protocolVersion: UInt32
    /// Free text for the server's logs, e.g. `"billing-worker 3.2"`.
    public var clientName: String
    /// The shared secret required on TCP; nil or empty means none.
    public var token: String?

    public init(protocolVersion: UInt32 = WireProtocol.version, clientName: String, token: String?) {
        self.protocolVersion = protocolVersion
        self.clientName = clientName
        self.token = token
    }
}

/// The server's answer to `Hello`: its version and the limits it enforces on this connection.
public struct HelloReply: Sendable, Hashable {
    /// The protocol version the server speaks.
    public var protocolVersion: UInt32
    /// e.g. `"steprund 0.1.0"`.
    public var serverName: String
    /// The largest frame body either side may send.
    public var maxFrameBytes: UInt32
    /// The largest JSON payload, in bytes of UTF-8 text.
    public var maxPayloadBytes: UInt32
    /// The most requests in flight on one connection.
    public var maxInFlight: UInt32

    public init(
        protocolVersion: UInt32 = WireProtocol.version, serverName: String, maxFrameBytes: UInt32,
        maxPayloadBytes: UInt32, maxInFlight: UInt32
    ) {
        self.protocolVersion = protocolVersion
        self.serverName = serverName
        self.maxFrameBytes = maxFrameBytes
        self.maxPayloadBytes = maxPayloadBytes
        self.maxInFlight = maxInFlight
    }
}

/// The answer to a health check.
public struct HealthReply: Sendable, Hashable {
    /// True when the daemon is up and its database reachable.
    public var serving: Bool
    /// Round trip of the health query in microseconds; -1 if the database is unreachable.
    public var databaseLatencyMicros: Int64
    /// Human-readable detail.
    public var message: String

    public init(serving: Bool, databaseLatencyMicros: Int64, message: String) {
        self.serving = serving
        self.databaseLatencyMicros = databaseLatencyMicros
        self.message = message
    }
}

extension HealthReply {
    /// The answer to a health call from a database round trip: serving, with the round trip's
    /// latency, or not serving, with the reason it failed.
    public static func probing(_ roundTrip: () async throws -> Duration) async -> HealthReply {
        do {
            let latency = try await roundTrip()
            return HealthReply(serving: true, databaseLatencyMicros: latency.inMicroseconds, message: "ok")
        } catch {
            return HealthReply(serving: false, databaseLatencyMicros: -1, message: "\(error)")
        }
    }
}
