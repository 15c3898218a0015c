import CStepRunProto
import StepRunCore

// StepRunError ⇄ C `Status { code, message, details }`.
//
// The code and message alone are what any gRPC-minded client needs; `details` carries what lets
// `decodeResponse` rebuild the very `StepRunError` case the server threw: the field of an
// INVALID_ARGUMENT, the reason and current status of a stale step run or attempt, and the index and
// own message of the operation that failed a transaction.

extension EncodeArena {
    func status(_ error: StepRunError) -> UnsafeMutablePointer<Steprun__V1__Status> {
        let status = message(steprun__v1__status__init)
        status.pointee.code = error.code.rawValue
        status.pointee.message = cString(error.message)

        var transactionIndex: Int?
        var cause = error
        if case .transactionFailed(let index, let inner) = error {
            transactionIndex = index
            cause = inner
        }
        // A transaction never nests another, so a cause that is itself a transaction failure cannot
        // come from the store; should one appear, its innermost cause supplies the details.
        while case .transactionFailed(_, let inner) = cause {
            cause = inner
        }

        var details: UnsafeMutablePointer<Steprun__V1__ErrorDetails>?
        func detailsMessage() -> UnsafeMutablePointer<Steprun__V1__ErrorDetails> {
            if let details { return details }
            let created = message(steprun__v1__error_details__init)
            details = created
            return created
        }
        switch cause {
        case .invalidArgument(let field, _) where !field.isEmpty:
            detailsMessage().pointee.field = cString(field)
        case .staleStepRun(let current):
            detailsMessage().pointee.reason = cString(cause.reason ?? "")
            detailsMessage().pointee.step_status = current.wire
        case .staleAttempt(let current):
            detailsMessage().pointee.reason = cString(cause.reason ?? "")
            detailsMessage().pointee.attempt_status = current.wire
        case .resultTooLarge, .pageRequired:
            detailsMessage().pointee.reason = cString(cause.reason ?? "")
        default:
            break
        }
        if let transactionIndex {
            let body = detailsMessage()
            body.pointee._transaction_index_case = STEPRUN__V1__ERROR_DETAILS___TRANSACTION_INDEX_TRANSACTION_INDEX
            body.pointee.transaction_index = UInt32(clamping: transactionIndex)
            body.pointee.cause_message = cString(cause.message)
        }
        status.pointee.details = details
        return status
    }
}

extension StepRunError {
    /// Rebuilds the error a `Status` describes. Never fails: a status this version cannot place
    /// (an unknown code, a stale reason without a known status) still becomes an error with the
    /// server's code class and message.
    init(status: Steprun__V1__Status) {
        let message = status.message.map { String(cString: $0) } ?? ""
        guard let details = status.details?.pointee else {
            self = Self.plain(code: status.code, message: message, details: nil)
            return
        }
        guard details._transaction_index_case == STEPRUN__V1__ERROR_DETAILS___TRANSACTION_INDEX_TRANSACTION_INDEX else {
            self = Self.plain(code: status.code, message: message, details: details)
            return
        }
        let causeMessage = details.cause_message.map { String(cString: $0) } ?? ""
        // Always sent with transaction_index (possibly empty), so no fallback to the outer message:
        // an empty cause message has to survive as empty.
        let cause = Self.plain(code: status.code, message: causeMessage, details: details)
        self = .transactionFailed(index: Int(details.transaction_index), cause: cause)
    }

    private static func plain(code: Int32, message: String, details: Steprun__V1__ErrorDetails?) -> StepRunError {
        guard let code = StatusCode(rawValue: code) else {
            return .internal("status code \(code): \(message)")
        }
        switch code {
        case .cancelled: return .cancelled(message)
        case .invalidArgument:
            let field = details?.field.map { String(cString: $0) } ?? ""
            return .invalidArgument(field: field, message: message)
        case .deadlineExceeded: return .deadlineExceeded(message)
        case .notFound: return .notFound(message)
        case .alreadyExists: return .alreadyExists(message)
        case .permissionDenied: return .permissionDenied(message)
        case .resourceExhausted: return .resourceExhausted(message)
        case .failedPrecondition:
            let reason = details?.reason.map { String(cString: $0) } ?? ""
            if reason == "stale_step_run", let details, let current = StepStatus(wire: details.step_status) {
                return .staleStepRun(status: current)
            }
            if reason == "stale_attempt", let details, let current = AttemptStatus(wire: details.attempt_status) {
                return .staleAttempt(status: current)
            }
            if reason == "result_too_large" { return .resultTooLarge(message) }
            if reason == "page_required" { return .pageRequired(message) }
            return .failedPrecondition(message)
        case .aborted: return .aborted(message)
        case .unavailable: return .unavailable(message)
        case .internal: return .internal(message)
        case .unauthenticated: return .unauthenticated(message)
        case .unimplemented: return .unimplemented(message)
        case .ok, .unknown, .outOfRange, .dataLoss:
            // StepRunError has no case for these; steprund never sends them. Keep the code's name.
            return .internal("\(code): \(message)")
        }
    }
}
