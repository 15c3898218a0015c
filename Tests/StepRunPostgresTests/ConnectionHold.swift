import Dispatch
import StepRunCore
@testable import StepRunPostgres
import StepRunTesting
import Synchronization

/// Holds one of a pool's connections, on its worker's thread, until `release()`.
///
/// `hold` returns once the worker is inside the held call. Counting the pool's busy workers is not
/// enough: a worker that has just answered the previous call still counts busy until it asks for
/// its next job, and calls queued meanwhile would run before the hold does.
final class ConnectionHold: Sendable {
    private let gate: DispatchSemaphore
    private let task: Task<Void, any Error>

    private init(gate: DispatchSemaphore, task: Task<Void, any Error>) {
        self.gate = gate
        self.task = task
    }

    static func hold(_ pool: PostgresPool, deadline: ContinuousClock.Instant? = nil) async -> ConnectionHold {
        let gate = DispatchSemaphore(value: 0)
        let inside = Mutex(false)
        let task = Task {
            try await pool.withConnection(deadline: deadline) { _ throws(StepRunError) in
                inside.withLock { $0 = true }
                gate.wait()
            }
        }
        let held = await eventually(timeout: .seconds(120)) { inside.withLock { $0 } }
        precondition(held, "the pool never ran the call that holds its connection")
        return ConnectionHold(gate: gate, task: task)
    }

    /// Lets the held call return, and waits until it has.
    func release() async throws {
        gate.signal()
        try await task.value
    }
}
