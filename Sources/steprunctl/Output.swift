import Foundation
import StepRunClient
import StepRunCore

/// Renders results as aligned tables for people or as JSON for scripts.
enum Output {
    static func table(_ headers: [String], _ rows: [[String]]) -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { index, cell in
                index == cells.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }
        return ([line(headers)] + rows.map(line)).joined(separator: "\n")
    }

    static func print(json value: Any) {
        let data = (try? JSONSerialization.data(withJSONObject: value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data("null".utf8)
        Swift.print(String(decoding: data, as: UTF8.self))
    }

    static func time(_ timestamp: Timestamp?) -> String {
        timestamp.map(\.description) ?? "-"
    }

    static func object(_ payload: JSONPayload?) -> Any {
        guard let payload, let data = payload.text.data(using: .utf8), let value = try? JSONSerialization.jsonObject(with: data) else {
            return NSNull()
        }
        return value
    }

    static func stepRun(_ run: StepRun) -> [String: Any] {
        [
            "id": run.id.uuidString.lowercased(), "run_id": run.runID.uuidString.lowercased(), "step": run.step,
            "status": run.status.rawValue, "input": object(run.input), "output": object(run.output),
            "last_error": object(run.lastError), "recovery": object(run.recovery), "resume": object(run.resume),
            "manual": object(run.manual), "inserted_at": run.insertedAt.description, "updated_at": run.updatedAt.description,
            "completed_at": run.completedAt.map { $0.description as Any } ?? NSNull(),
        ]
    }

    static func attempt(_ attempt: StepAttempt) -> [String: Any] {
        [
            "id": attempt.id.uuidString.lowercased(), "step_run_id": attempt.stepRunID.uuidString.lowercased(),
            "attempt_number": attempt.attemptNumber, "status": attempt.status.rawValue, "error": object(attempt.error),
            "inserted_at": attempt.insertedAt.description, "updated_at": attempt.updatedAt.description,
        ]
    }

    static func stepRunDetail(_ run: StepRun) -> String {
        let fields: [(String, String)] = [
            ("id", run.id.uuidString.lowercased()), ("run", run.runID.uuidString.lowercased()), ("step", run.step),
            ("status", run.status.rawValue), ("input", run.input.text), ("output", run.output?.text ?? "-"),
            ("last_error", run.lastError?.text ?? "-"), ("recovery", run.recovery?.text ?? "-"), ("resume", run.resume?.text ?? "-"),
            ("manual", run.manual?.text ?? "-"), ("inserted_at", time(run.insertedAt)), ("updated_at", time(run.updatedAt)),
            ("completed_at", time(run.completedAt)),
        ]
        let width = fields.map(\.0.count).max() ?? 0
        return fields.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }

    static func stepRunRows(_ runs: [StepRun]) -> String {
        table(
            ["STEP", "STATUS", "ID", "COMPLETED_AT"],
            runs.map { [$0.step, $0.status.rawValue, $0.id.uuidString.lowercased(), time($0.completedAt)] })
    }
}
