import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// SIGTERM, SIGINT and SIGHUP, trapped from the first moment of `serve` rather than only once the
/// service group runs.
///
/// Start-up can take seconds (creating and starting the embedded Postgres, waiting for a database
/// that is still booting). A stop signal in that window used to kill the daemon outright — the
/// default action — leaving a Postgres it had just started running on its own (`make run` under
/// `timeout` or an IDE's stop button). Now a signal then is remembered: start-up stops at its next
/// step and undoes what it did, and once the service group exists every signal becomes a graceful
/// shutdown of it. SIGHUP counts too: a closed terminal should stop the daemon, not kill it.
final class StopSignals: Sendable {
    private struct State {
        var received: UnixSignal?
        var group: ServiceGroup?
    }

    private let state = Mutex(State())
    private let logger: Logger

    /// Starts trapping the signals; they no longer terminate the process.
    static func trap(logger: Logger) async -> StopSignals {
        let signals = StopSignals(logger: logger)
        let sequence = await UnixSignalsSequence(trapping: .sigterm, .sigint, .sighup)
        Task {
            for await signal in sequence {
                signals.received(signal)
            }
        }
        return signals
    }

    private init(logger: Logger) {
        self.logger = logger
    }

    /// The first stop signal received, if any.
    var received: UnixSignal? {
        state.withLock { $0.received }
    }

    /// From now on a stop signal shuts `group` down gracefully; one received before this call does
    /// so at once (a group remembers a shutdown requested before it runs).
    func forward(to group: ServiceGroup) {
        let pending = state.withLock { state in
            state.group = group
            return state.received != nil
        }
        if pending { Task { await group.triggerGracefulShutdown() } }
    }

    private func received(_ signal: UnixSignal) {
        let group = state.withLock { state in
            if state.received == nil { state.received = signal }
            return state.group
        }
        logger.notice("received \(signal); shutting down gracefully")
        if let group { Task { await group.triggerGracefulShutdown() } }
    }
}
