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
/// not have been applied) and the next call connects again. Every call is bounded by its timeout
/// (or `Configuration.defaultTimeout`) and by task cancellation, including while the connection is
/// still being opened.
///
/// ```swift
/// let client = StepRunClient(target: .unix(path: "/run/steprund/steprund.sock"))
/// let (stepRun, decision) = try await client.beginStep(runID: runID, step: "charge", input: ["amount": 42])
/// ```
///
/// The connection lives on one event loop of the group, chosen when the client is made. Tasks that
/// mostly call the daemon can run on that loop (`taskExecutor`) and save two thread hops per call.
public final class StepRunClient: StepRunStore {
    /// Where the daemon listens.
    public let target: Target
    /// Timeouts, frame limit and client name.
    public let configuration: Configuration
    /// The event loop the connection (and every reconnection) uses.
    public let eventLoop: any EventLoop
    /// Runs tasks on `eventLoop`: a task that prefers it sends and receives its calls without a
    /// thread hop (`group.addTask(executorPreference: client.taskExecutor) { … }`).
    public let taskExecutor: EventLoopTaskExecutor
    private let logger: Logger
    private let state = Mutex(State())

    private struct State {
        var phase = Phase.idle
        /// Calls waiting for the connection being opened, by waiter number.
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiter: UInt64 = 0
    }

    private enum Phase {
        case idle
        /// One attempt is under way; every caller waits for it rather than opening its own.
        case connecting(Task<Void, Never>)
        case ready(ClientConnection)
        case closed
    }

    private struct Waiter {
        var continuation: CheckedContinuation<ClientConnection, any Error>
        var timer: Scheduled<Void>?
    }

    /// A client for the daemon at `target`; nothing connects until `connect()` or the first call.
    public init(
        target: Target, configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "steprun.client"),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.target = target
        self.configuration = configuration
        self.logger = logger
        self.eventLoop = eventLoopGroup.next()
        self.taskExecutor = EventLoopTaskExecutor(eventLoop: eventLoop)
    }

    /// Opens the connection now (it is otherwise opened by the first call); returns the server's Hello.
    @discardableResult
    public func connect() async throws -> HelloReply {
        // No deadline of its own: the attempt is bounded by `connectTimeout` and reports why it failed.
        try await connection(deadline: nil).hello
    }

    /// Sends one store operation and waits for its result, at most until `deadline` (nil: the default timeout).
    /// Errors thrown are `StepRunError`.
    /// A whole-list request (`PageRequest.whole`) gets the whole list: the client follows the pages
    /// the server cuts it into, all before the one `deadline`.
    public func perform(_ request: StoreRequest, deadline: ContinuousClock.Instant?) async throws -> StoreResult {
        if let page = request.page, !page.paged {
            return try await performWhole(request, deadline: deadline ?? .now.advanced(by: configuration.defaultTimeout))
        }
        return try await performOne(request, deadline: deadline)
    }

    /// One request, one answer (one page of a list).
    func performOne(_ request: StoreRequest, deadline: ContinuousClock.Instant?) async throws -> StoreResult {
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
        let (previous, waiters) = state.withLock { state -> (Phase, [Waiter]) in
            defer {
                state.phase = .closed
                state.waiters = [:]
            }
            return (state.phase, Array(state.waiters.values))
        }
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume(throwing: StepRunError.unavailable("the client was closed"))
        }
        switch previous {
        case .ready(let connection): await connection.close()
        // Cancelled, the attempt stops waiting for Hello; it sees `.closed` and closes what it opened.
        case .connecting(let attempt):
            attempt.cancel()
            await attempt.value
        case .idle, .closed: break
        }
    }

    private func call(_ call: Call, deadline: ContinuousClock.Instant?) async throws -> Reply {
        let deadline = deadline ?? .now.advanced(by: configuration.defaultTimeout)
        let connection = try await connection(deadline: deadline)
        return try await connection.call(call, deadline: deadline)
    }

    // MARK: Connecting

    /// The live connection, opening one if there is none. Concurrent callers share one attempt, and
    /// each stops waiting at its own deadline or when its task is cancelled.
    private func connection(deadline: ContinuousClock.Instant?) async throws -> ClientConnection {
        if case .ready(let connection) = state.withLock({ $0.phase }), connection.isActive {
            return connection
        }
        if let deadline, deadline <= .now {
            throw StepRunError.deadlineExceeded("the deadline passed before a connection to steprund was open")
        }
        let key = state.withLock { state in
            defer { state.nextWaiter &+= 1 }
            return state.nextWaiter
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                enum Start { case now(Result<ClientConnection, StepRunError>), wait, connect }
                let start = state.withLock { state -> Start in
                    switch state.phase {
                    case .ready(let connection) where connection.isActive:
                        return .now(.success(connection))
                    case .closed:
                        return .now(.failure(.unavailable("the client was closed")))
                    case .connecting:
                        state.waiters[key] = Waiter(continuation: continuation)
                        return .wait
                    case .idle, .ready:
                        state.waiters[key] = Waiter(continuation: continuation)
                        state.phase = .connecting(Task { await self.openConnection() })
                        return .connect
                    }
                }
                switch start {
                case .now(let result):
                    continuation.resume(with: result)
                case .wait, .connect:
                    if let deadline { armTimer(for: key, deadline: deadline) }
                    // Cancelled before the waiter existed: the handler below found nothing to cancel.
                    if Task.isCancelled { stopWaiting(key, .cancelled("the call was cancelled while connecting to steprund")) }
                }
            }
        } onCancel: {
            stopWaiting(key, .cancelled("the call was cancelled while connecting to steprund"))
        }
    }

    private func armTimer(for key: UInt64, deadline: ContinuousClock.Instant) {
        let timer = eventLoop.scheduleTask(deadline: .now() + TimeAmount(deadline - .now)) { [self] in
            stopWaiting(key, .deadlineExceeded("the deadline passed before a connection to steprund was open; nothing was sent"))
        }
        let stillWaiting = state.withLock { state in
            guard state.waiters[key] != nil else { return false }
            state.waiters[key]?.timer = timer
            return true
        }
        if !stillWaiting { timer.cancel() }
    }

    /// Fails one waiting caller (deadline or cancellation); the attempt itself goes on for the others.
    private func stopWaiting(_ key: UInt64, _ error: StepRunError) {
        guard let waiter = state.withLock({ $0.waiters.removeValue(forKey: key) }) else { return }
        waiter.timer?.cancel()
        waiter.continuation.resume(throwing: error)
    }

    /// One connection attempt (bounded by `connectTimeout`); hands its outcome to every waiter.
    private func openConnection() async {
        let outcome: Result<ClientConnection, StepRunError>
        do {
            outcome = .success(try await ClientConnection.connect(to: target, configuration: configuration, eventLoop: eventLoop))
        } catch let error as StepRunError {
            outcome = .failure(error)
        } catch {
            outcome = .failure(.unavailable("cannot connect to steprund at \(target): \(error)"))
        }
        let (waiters, closed) = state.withLock { state -> ([Waiter], Bool) in
            defer { state.waiters = [:] }
            if case .closed = state.phase { return (Array(state.waiters.values), true) }
            switch outcome {
            case .success(let connection): state.phase = .ready(connection)
            case .failure: state.phase = .idle
            }
            return (Array(state.waiters.values), false)
        }
        if case .failure(let error) = outcome {
            logger.debug("cannot connect to steprund", metadata: ["target": "\(target)", "error": "\(error)"])
        }
        if closed, case .success(let connection) = outcome {
            await connection.close()
        }
        for waiter in waiters {
            waiter.timer?.cancel()
            waiter.continuation.resume(with: closed ? .failure(StepRunError.unavailable("the client was closed")) : outcome.mapError { $0 })
        }
    }
}
