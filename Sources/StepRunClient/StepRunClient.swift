import Logging
import NIOCore
import NIOPosix
import StepRunCore
import StepRunWire
import Synchronization

/// A connection to steprund with one async method per store operation (from `StepRunStore`).
///
/// Calls from any number of tasks share one connection, multiplexed by request id. The connection
/// is opened on first use; if it breaks, calls in flight fail with `.unavailable` (they may or may
/// not have been applied) and the next call connects again.
///
/// ```swift
/// let client = StepRunClient(target: .unix(path: "/run/steprund/steprund.sock"))
/// let (stepRun, decision) = try await client.beginStep(runID: runID, step: "charge", input: ["amount": 42])
/// ```
public final class StepRunClient: StepRunStore {
    public let target: Target
    public let configuration: Configuration
    private let logger: Logger
    private let group: any EventLoopGroup
    private let state = Mutex(ConnectionState.idle)

    private enum ConnectionState {
        case idle
        case connecting(Task<ClientConnection, any Error>)
        case ready(ClientConnection)
        case closed
    }

    public init(
        target: Target, configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "steprun.client"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.target = target
        self.configuration = configuration
        self.logger = logger
        self.group = eventLoopGroup
    }

    /// Opens the connection now (it is otherwise opened by the first call); returns the server's Hello.
    @discardableResult
    public func connect() async throws -> HelloReply {
        try await connection().hello
    }

    public func perform(_ request: StoreRequest, deadline: ContinuousClock.Instant?) async throws -> StoreResult {
        let reply = try await call(.store(request), deadline: deadline)
        guard case .store(let result) = reply else { throw StepRunError.internal("steprund answered with \(reply)") }
        return result
    }

    /// Asks the daemon whether it is serving and can reach its database.
    public func health(timeout: Duration? = nil) async throws -> HealthReply {
        let reply = try await call(.health, deadline: timeout.map { .now.advanced(by: $0) })
        guard case .health(let health) = reply else { throw StepRunError.internal("steprund answered with \(reply)") }
        return health
    }

    /// Closes the connection; later calls fail with `.unavailable`. Safe to call more than once.
    public func close() async {
        let previous = state.withLock { state -> ConnectionState in
            defer { state = .closed }
            return state
        }
        switch previous {
        case .ready(let connection): await connection.close()
        case .connecting(let task):
            if let connection = try? await task.value { await connection.close() }
        case .idle, .closed: break
        }
    }

    private func call(_ call: Call, deadline: ContinuousClock.Instant?) async throws -> Reply {
        let deadline = deadline ?? .now.advanced(by: configuration.defaultTimeout)
        let connection = try await connection()
        return try await connection.call(call, deadline: deadline)
    }

    /// The live connection, opening one if there is none; concurrent callers share one attempt.
    private func connection() async throws -> ClientConnection {
        enum Next {
            case use(ClientConnection)
            case wait(Task<ClientConnection, any Error>)
            case closed
        }
        let next: Next = state.withLock { state in
            switch state {
            case .ready(let connection) where connection.isActive:
                return .use(connection)
            case .connecting(let task):
                return .wait(task)
            case .closed:
                return .closed
            case .idle, .ready:
                let task = Task { [target, configuration, group] in
                    try await ClientConnection.connect(to: target, configuration: configuration, group: group)
                }
                state = .connecting(task)
                return .wait(task)
            }
        }
        switch next {
        case .use(let connection):
            return connection
        case .closed:
            throw StepRunError.unavailable("the client was closed")
        case .wait(let task):
            do {
                let connection = try await task.value
                state.withLock { state in
                    if case .connecting = state { state = .ready(connection) }
                }
                return connection
            } catch {
                state.withLock { state in
                    if case .connecting = state { state = .idle }
                }
                logger.debug("cannot connect to steprund", metadata: ["target": "\(target)", "error": "\(error)"])
                throw error
            }
        }
    }
}
