import Foundation
import StepRunCore

/// Reads domain values out of text-format rows. A value that does not parse means the schema and
/// the code disagree, which is an internal error rather than something a caller did.
extension PGRows {
    func stepRun(row: Int, from start: Int) throws(StepRunError) -> StepRun {
        StepRun(
            id: try uuid(row, start),
            runID: try uuid(row, start + 1),
            step: try text(row, start + 2),
            status: try status(row, start + 3),
            input: payload(row, start + 4) ?? .empty,
            output: payload(row, start + 5),
            lastError: payload(row, start + 6),
            recovery: payload(row, start + 7),
            resume: payload(row, start + 8),
            manual: payload(row, start + 9),
            insertedAt: try timestamp(row, start + 10),
            updatedAt: try timestamp(row, start + 11),
            completedAt: try optionalTimestamp(row, start + 12))
    }

    func attempt(row: Int, from start: Int) throws(StepRunError) -> StepAttempt {
        guard let number = Int(try text(row, start + 2)) else { throw Self.corrupt("attempt_number") }
        guard let status = AttemptStatus(rawValue: try text(row, start + 3)) else { throw Self.corrupt("attempt status") }
        return StepAttempt(
            id: try uuid(row, start),
            stepRunID: try uuid(row, start + 1),
            attemptNumber: number,
            status: status,
            error: payload(row, start + 4),
            insertedAt: try timestamp(row, start + 5),
            updatedAt: try timestamp(row, start + 6))
    }

    func text(_ row: Int, _ column: Int) throws(StepRunError) -> String {
        guard let value = self[row, column] else { throw Self.corrupt("column \(column) is NULL") }
        return value
    }

    func int(_ row: Int, _ column: Int) throws(StepRunError) -> Int {
        guard let value = Int(try text(row, column)) else { throw Self.corrupt("column \(column) is not an integer") }
        return value
    }

    func uuid(_ row: Int, _ column: Int) throws(StepRunError) -> UUID {
        guard let value = UUID(pgText: try text(row, column)) else { throw Self.corrupt("column \(column) is not a UUID") }
        return value
    }

    func status(_ row: Int, _ column: Int) throws(StepRunError) -> StepStatus {
        guard let value = StepStatus(rawValue: try text(row, column)) else { throw Self.corrupt("unknown step status") }
        return value
    }

    func payload(_ row: Int, _ column: Int) -> JSONPayload? {
        self[row, column].map { JSONPayload(trustedText: $0) }
    }

    private func timestamp(_ row: Int, _ column: Int) throws(StepRunError) -> Timestamp {
        guard let micros = Int64(try text(row, column)) else { throw Self.corrupt("column \(column) is not a timestamp") }
        return Timestamp(microsecondsSinceEpoch: micros)
    }

    private func optionalTimestamp(_ row: Int, _ column: Int) throws(StepRunError) -> Timestamp? {
        guard self[row, column] != nil else { return nil }
        return try timestamp(row, column)
    }

    private static func corrupt(_ what: String) -> StepRunError {
        .internal("unexpected value from the database: \(what)")
    }
}
