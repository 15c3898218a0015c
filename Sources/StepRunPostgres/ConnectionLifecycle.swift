/// The clock the pool's decisions read: `ContinuousClock` in production, a manual clock in tests
/// (`MockClock` in StepRunPostgresTests), so backoff and expiry are tested without waiting.
protocol PoolClock: Sendable {
    associatedtype Instant: InstantProtocol where Instant.Duration == Duration
    var now: Instant { get }
}

extension ContinuousClock: PoolClock {}

/// Each worker's connection as the pool state machine sees it: connected, or not and when it may
/// try again. Connecting itself (a blocking libpq call) happens on the worker's thread; this only
/// decides whether to try, and how long to back off after a failure.
///
/// A failed attempt waits `backoff` before the next one, doubling up to `maxBackoff`; a
/// successful one resets it. Until it may try again a worker answers its calls `UNAVAILABLE` at
/// once (`ConnectDecision.failFast`) rather than holding them for a connect timeout. When any
/// worker connects, the database is back: every worker waiting out a backoff may try at once
/// (`generation`), so one slow backoff does not keep a connection closed after an outage.
struct ConnectionLifecycle<Instant: InstantProtocol> where Instant.Duration == Duration {
    enum ConnectDecision: Equatable {
        /// Open a connection now.
        case connect
        /// Do not try yet; fail the calls in hand with this reason.
        case failFast(lastFailure: String)
    }

    private enum State {
        case connected
        case disconnected(Disconnected)
    }

    private struct Disconnected {
        /// When the next attempt may be made; nil: at once.
        var retryAt: Instant?
        /// `generation` when the last attempt failed.
        var failedAtGeneration: UInt64 = 0
        var lastFailure = "not connected yet"
    }

    let initialBackoff: Duration
    let maxBackoff: Duration
    private var states: [State]
    /// The wait after each worker's next failure.
    private var backoffs: [Duration]
    /// Bumped by every successful connect.
    private(set) var generation: UInt64 = 0
    private(set) var connectedCount = 0

    init(workerCount: Int, initialBackoff: Duration, maxBackoff: Duration) {
        self.initialBackoff = initialBackoff
        self.maxBackoff = max(initialBackoff, maxBackoff)
        self.states = Array(repeating: .disconnected(Disconnected()), count: workerCount)
        self.backoffs = Array(repeating: initialBackoff, count: workerCount)
    }

    /// The worker has no usable connection: may it try to open one now?
    func decide(worker: Int, now: Instant) -> ConnectDecision {
        switch states[worker] {
        case .connected:
            return .connect  // the worker found it unusable: it reports `closed` first, then connects
        case .disconnected(let state):
            if let retryAt = state.retryAt, now < retryAt, state.failedAtGeneration == generation {
                return .failFast(lastFailure: state.lastFailure)
            }
            return .connect
        }
    }

    /// The worker opened its connection. True when it had failed before (a reconnect to log).
    mutating func connected(worker: Int) -> Bool {
        let reconnected = backoffs[worker] > initialBackoff
        if case .disconnected = states[worker] { connectedCount += 1 }
        states[worker] = .connected
        backoffs[worker] = initialBackoff
        generation &+= 1
        return reconnected
    }

    /// The attempt failed: returns how long the worker now waits before the next one.
    mutating func connectFailed(worker: Int, reason: String, now: Instant) -> Duration {
        if case .connected = states[worker] { connectedCount -= 1 }
        let wait = backoffs[worker]
        states[worker] = .disconnected(Disconnected(retryAt: now.advanced(by: wait), failedAtGeneration: generation, lastFailure: reason))
        backoffs[worker] = min(wait * 2, maxBackoff)
        return wait
    }

    /// The worker closed its connection (lost, or the pool is shutting down). It may reconnect at
    /// once: the backoff only follows a failed attempt.
    mutating func closed(worker: Int) {
        guard case .connected = states[worker] else { return }
        connectedCount -= 1
        states[worker] = .disconnected(Disconnected(lastFailure: "database connection lost"))
    }
}
