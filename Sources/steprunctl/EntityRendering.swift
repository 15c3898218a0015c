import Foundation
import StepRunCore

// How the store's entities look in `--json` output and in tables. The JSON shapes are part of
// steprunctl's contract (docs/STEPRUNCTL.md): change them only by adding members.

extension UUID {
    /// Lowercase, the way Postgres and most tools print UUIDs (Foundation prints uppercase).
    var lowercased: String { uuidString.lowercased() }
}

extension StepRun {
    var json: JSONOutput {
        .object([
            ("id", .string(id.lowercased)),
            ("run_id", .string(runID.lowercased)),
            ("step", .string(step)),
            ("status", .string(status.rawValue)),
            ("input", .payload(input)),
            ("output", .payload(output)),
            ("last_error", .payload(lastError)),
            ("recovery", .payload(recovery)),
            ("resume", .payload(resume)),
            ("manual", .payload(manual)),
            ("inserted_at", .string(insertedAt.description)),
            ("updated_at", .string(updatedAt.description)),
            ("completed_at", completedAt.map { .string($0.description) } ?? .null),
        ])
    }

    /// One label/value line per field, payloads in full.
    var fields: [(String, String)] {
        [
            ("id", id.lowercased),
            ("run_id", runID.lowercased),
            ("step", step),
            ("status", status.rawValue),
            ("input", Cell.payload(input)),
            ("output", Cell.payload(output)),
            ("last_error", Cell.payload(lastError)),
            ("recovery", Cell.payload(recovery)),
            ("resume", Cell.payload(resume)),
            ("manual", Cell.payload(manual)),
            ("inserted_at", insertedAt.description),
            ("updated_at", updatedAt.description),
            ("completed_at", Cell.timestamp(completedAt)),
        ]
    }
}

extension StepAttempt {
    var json: JSONOutput {
        .object([
            ("id", .string(id.lowercased)),
            ("step_run_id", .string(stepRunID.lowercased)),
            ("attempt_number", .int(Int64(attemptNumber))),
            ("status", .string(status.rawValue)),
            ("error", .payload(error)),
            ("inserted_at", .string(insertedAt.description)),
            ("updated_at", .string(updatedAt.description)),
        ])
    }
}

/// Table cell text for values that may be absent.
enum Cell {
    /// Shown for a null payload or timestamp.
    static let absent = "-"
    /// Payloads wider than this are cut in multi-row tables; `get` and `--json` show them whole.
    static let payloadWidth = 60

    static func payload(_ payload: JSONPayload?) -> String {
        payload.map { JSONOutput.compacted($0.text) } ?? absent
    }

    static func timestamp(_ timestamp: Timestamp?) -> String {
        timestamp?.description ?? absent
    }
}
