import NIOCore
import StepRunCore

/// A request a connection is working on (`ConnectionHandler.inFlight`): what it is, when it is due,
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

extension StepRunError {
    /// The answer to a frame (well-formed or not) reusing the id of a request still in flight.
    static func duplicateRequestID(_ id: UInt64) -> StepRunError {
        .invalidArgument(field: "id", message: "request id \(id) is already in flight on this connection; this request was not run")
    }
}
