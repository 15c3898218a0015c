import NIOCore
import StepRunCore

/// A request a connection is working on (`ConnectionStateMachine`): what it is, when it is due,
/// and how it was answered. Event-loop confined, like its handler.
struct InFlightRequest {
    var id: UInt64
    var operation: String
    /// True for a call that may change stored state (its result must never be lost for size).
    var writes: Bool
    var started: ContinuousClock.Instant
    /// The status code the client was answered with (the deadline may answer before the store does).
    var code: StatusCode = .ok
    /// When the request is answered `DEADLINE_EXCEEDED` if the store has not answered it.
    var deadline: NIODeadline
    var timeout: Duration
    /// Frees the caller's place if it is still waiting for a database connection (set once started).
    var cancel: StoreCallHandle?
    /// Set once the client has been answered (by the result or by the deadline).
    var answered = false
}
