/// Every way an operation can fail, each with its gRPC status code and a human-readable message.
///
/// Pattern-match on the cases: `catch StepRunError.staleStepRun(let status)`.
public indirect enum StepRunError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The caller or the daemon gave up on the call.
    case cancelled(String)
    /// Bad input; `field` names the offending field (`input`, `step`, `operations[2].output`, …).
    case invalidArgument(field: String, message: String)
    /// The call's deadline passed before it finished.
    case deadlineExceeded(String)
    /// The step run or attempt does not exist.
    case notFound(String)
    /// An explicit attempt number is already taken.
    case alreadyExists(String)
    case permissionDenied(String)
    /// A limit was hit (pool wait queue full, too many requests in flight, …); retry later.
    case resourceExhausted(String)
    /// The step run is not in a status that allows the change (`stale_step_run`).
    case staleStepRun(status: StepStatus)
    /// The attempt is no longer running (`stale_attempt`).
    case staleAttempt(status: AttemptStatus)
    /// A stored row (or page) encodes to more than this daemon's frame limit (`result_too_large`):
    /// not load to back off from — the same read fails until max-frame-bytes is raised.
    case resultTooLarge(String)
    /// A version 1 whole-list read that does not fit one response (`page_required`); the
    /// message says how to page. A case of its own so the reason travels in `details.reason`.
    case pageRequired(String)
    /// Another precondition failed.
    case failedPrecondition(String)
    case aborted(String)
    /// The database (or the daemon) is unreachable; safe to retry.
    case unavailable(String)
    case `internal`(String)
    case unauthenticated(String)
    case unimplemented(String)
    /// Operation `index` of a `transaction` failed with `cause`; nothing in the transaction was applied.
    case transactionFailed(index: Int, cause: StepRunError)

    /// The gRPC status code.
    public var code: StatusCode {
        switch self {
        case .cancelled: .cancelled
        case .invalidArgument: .invalidArgument
        case .deadlineExceeded: .deadlineExceeded
        case .notFound: .notFound
        case .alreadyExists: .alreadyExists
        case .permissionDenied: .permissionDenied
        case .resourceExhausted: .resourceExhausted
        case .staleStepRun, .staleAttempt, .resultTooLarge, .pageRequired, .failedPrecondition: .failedPrecondition
        case .aborted: .aborted
        case .unavailable: .unavailable
        case .internal: .internal
        case .unauthenticated: .unauthenticated
        case .unimplemented: .unimplemented
        case .transactionFailed(_, let cause): cause.code
        }
    }

    /// A human-readable explanation.
    public var message: String {
        switch self {
        case .cancelled(let message), .deadlineExceeded(let message), .notFound(let message),
            .alreadyExists(let message), .permissionDenied(let message), .resourceExhausted(let message),
            .resultTooLarge(let message), .pageRequired(let message), .failedPrecondition(let message), .aborted(let message), .unavailable(let message),
            .internal(let message), .unauthenticated(let message), .unimplemented(let message):
            message
        case .invalidArgument(_, let message):
            message
        case .staleStepRun(let status):
            "stale_step_run: the step run is \(status.rawValue)"
        case .staleAttempt(let status):
            "stale_attempt: the attempt is \(status.rawValue)"
        case .transactionFailed(let index, let cause):
            "transaction operation \(index) failed, nothing was applied: \(cause.message)"
        }
    }

    /// The machine-readable reason for `FAILED_PRECONDITION` errors (`stale_step_run`, `stale_attempt`,
    /// `result_too_large`, `page_required`).
    public var reason: String? {
        switch self {
        case .staleStepRun: "stale_step_run"
        case .staleAttempt: "stale_attempt"
        case .resultTooLarge: "result_too_large"
        case .pageRequired: "page_required"
        case .transactionFailed(_, let cause): cause.reason
        default: nil
        }
    }

    /// True when retrying the same call later may succeed.
    public var isRetryable: Bool {
        switch code {
        case .unavailable, .resourceExhausted, .aborted, .deadlineExceeded: true
        default: false
        }
    }

    public var description: String { "\(code): \(message)" }
}
