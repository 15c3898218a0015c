@testable import StepRunPostgres
import Synchronization

/// A clock that moves only when a test says so (as postgres-nio's ConnectionPoolTestUtils'
/// MockClock), for the pool state machine's backoff and expiry.
final class MockClock: PoolClock {
    private let start = ContinuousClock.now
    private let offset = Mutex(Duration.zero)

    var now: ContinuousClock.Instant { start.advanced(by: offset.withLock { $0 }) }

    func advance(by duration: Duration) {
        offset.withLock { $0 += duration }
    }

    /// The instant `seconds` after the clock's start.
    func at(_ seconds: Int) -> ContinuousClock.Instant { start.advanced(by: .seconds(seconds)) }
    func at(milliseconds: Int) -> ContinuousClock.Instant { start.advanced(by: .milliseconds(milliseconds)) }
}
