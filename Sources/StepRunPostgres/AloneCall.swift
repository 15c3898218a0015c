import Foundation
import StepRunCore

/// The answer to a store call: called exactly once.
typealias StoreCompletion = @Sendable (Result<StoreResult, StepRunError>) -> Void

/// Execution path 1 of 4: one store call run by itself (autocommit) on a connection the running
/// thread owns, and its caller answered. (The others: `GroupCommit`, `InlineCall`,
/// `HeldGroupHandover`.)
///
/// A single statement can still lose a deadlock or serialization race against a group holding
/// locks, or meet a statement prepared before a migration changed the table; Postgres then
/// applied nothing of it, so it is run again. So is a `transaction` call that failed that way: it
/// was rolled back whole. The retries are a bounded wait: at most `maxRetries`, paused 1, 2, 3 …
/// ms apart (15 ms in all), never past the caller's deadline and only while the connection is idle
/// — the worker holds its connection that long at most, which is less than one contended group.
struct AloneCall: Sendable {
    static let maxRetries = 5

    var request: StoreRequest
    var sql: StepRunSQL
    var deadline: ContinuousClock.Instant
    var completion: StoreCompletion

    func run(on connection: PGConnection) {
        // Nobody waits for it any more (a group's fallback after its statement was cancelled, say):
        // running it would only hold the connection, and a write might then commit unasked.
        guard deadline > ContinuousClock.now else {
            completion(.failure(.deadlineExceeded("the deadline passed before the call ran; it was not applied")))
            return
        }
        var outcome = perform(on: connection)
        var retries = 0
        while Self.isAborted(outcome), retries < Self.maxRetries, connection.isIdle, deadline > ContinuousClock.now {
            retries += 1
            Thread.sleep(forTimeInterval: Duration.milliseconds(retries).inSeconds)
            outcome = perform(on: connection)
        }
        completion(outcome)
    }

    private func perform(on connection: PGConnection) -> Result<StoreResult, StepRunError> {
        Result { () throws(StepRunError) in try StoreOperations(connection: connection, sql: sql).perform(request) }
    }

    /// Postgres applied nothing of the call (a stale statement, a race, a deadlock): it may run again.
    static func isAborted(_ outcome: Result<StoreResult, StepRunError>) -> Bool {
        switch outcome {
        case .failure(.aborted), .failure(.transactionFailed(_, cause: .aborted)): true
        default: false
        }
    }
}
