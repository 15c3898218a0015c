import StepRunCore

extension PGError {
    /// The store error a caller sees for a database failure.
    func storeError(context: String) -> StepRunError {
        if connectionLost {
            return .unavailable("database unreachable while \(context): \(message)")
        }
        if isStalePlan {
            return .aborted("the database schema changed under a prepared statement while \(context); retry")
        }
        switch sqlState {
        case "57014":  // query_canceled: statement_timeout, or cancelled once nobody waited for it (StatementWatch)
            return .deadlineExceeded("the database statement timed out or was cancelled at its callers' deadline while \(context)")
        case "40001", "40P01", "55P03":  // serialization_failure, deadlock_detected, lock_not_available
            return .aborted("the database aborted the transaction while \(context) (\(message)); retry")
        case "23505":  // unique_violation
            return .alreadyExists("\(message) while \(context)")
        case "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004":
            return .unavailable("database unavailable while \(context): \(message)")
        case "25006":  // read_only_sql_transaction: a standby (or read-only server) refused the statement before doing anything
            return .unavailable("the database server is read-only (a standby, not the primary) while \(context): nothing was applied; retry")
        case "53300":  // too_many_connections
            return .unavailable("the database refused the connection while \(context): \(message)")
        case "54000", "54001":  // program_limit_exceeded, statement_too_complex
            return .invalidArgument(field: "payload", message: "the database refused the payload while \(context): \(message)")
        default:
            return .internal("database error while \(context): \(description)")
        }
    }
}

extension PGConnection {
    /// `simpleQuery`, with failures already turned into the store error a caller would see.
    @discardableResult
    func simpleQuery(_ sql: String, context: String) throws(StepRunError) -> PGRows {
        do {
            return try simpleQuery(sql)
        } catch {
            throw error.storeError(context: context)
        }
    }
}
