import Logging
import StepRunCore
import StepRunWire
import Synchronization

/// Answers a `health` call: checks the database and reports how long it took.
public typealias HealthCheck = @Sendable (_ deadline: ContinuousClock.Instant) async -> HealthReply

/// Which listener a connection arrived on; TCP connections must authenticate.
enum Transport: String, Sendable {
    case unix
    case tcp
}

/// What every connection of one server shares.
final class ServerContext: Sendable {
    let configuration: ServerConfiguration
    let store: any StepRunStore
    /// `store`, if it may run a call on the event loop (`InlineCapableStore`): checked once here.
    let inlineStore: (any InlineCapableStore)?
    let health: HealthCheck
    let logger: Logger
    let helloReply: HelloReply
    /// Open connections, for the connection limit.
    let openConnections = Atomic<Int>(0)
    let metrics = ServerMetrics()

    init(configuration: ServerConfiguration, store: any StepRunStore, health: @escaping HealthCheck, logger: Logger) {
        self.configuration = configuration
        self.store = store
        self.inlineStore = store as? any InlineCapableStore
        self.health = health
        self.logger = logger
        self.helloReply = HelloReply(
            protocolVersion: WireProtocol.version, serverName: configuration.serverName,
            maxFrameBytes: UInt32(clamping: configuration.maxFrameBytes),
            maxPayloadBytes: UInt32(clamping: configuration.storeLimits.maxPayloadBytes),
            maxInFlight: UInt32(clamping: configuration.maxInFlightPerConnection))
    }

    /// The deadline for a request that asked for `timeoutMs` (0 = default), capped by the maximum.
    func deadline(timeoutMs: UInt32) -> (ContinuousClock.Instant, Duration) {
        let requested = timeoutMs == 0 ? configuration.defaultRequestTimeout : .milliseconds(Int64(timeoutMs))
        let timeout = min(requested, max(configuration.maxRequestTimeout, configuration.defaultRequestTimeout))
        return (.now.advanced(by: timeout), timeout)
    }
}

/// Sent down every connection's pipeline when the server starts its graceful shutdown.
struct ServerDrainingEvent: Sendable {}
