import Foundation
import StepRunCore
import StepRunPostgres

/// Writes a run's history straight through the repository, so the CLI under test only reads it.
extension CtlDaemon {
    /// Claims and completes `step` with `output`; returns the completed step run.
    @discardableResult
    func completedStep(runID: UUID, step: String, input: JSONPayload = .empty, output: JSONPayload, recovery: JSONPayload? = nil)
        async throws -> StepRun
    {
        let (stepRun, _) = try await repository.beginStep(runID: runID, step: step, input: input, recovery: recovery)
        return try await repository.completeStep(stepRunID: stepRun.id, output: output)
    }

    /// Claims `step` and leaves it running.
    func runningStep(runID: UUID, step: String, input: JSONPayload = .empty) async throws -> StepRun {
        try await repository.beginStep(runID: runID, step: step, input: input).0
    }
}

/// The microseconds since the epoch that an RFC 3339 `YYYY-MM-DDTHH:MM:SS.ffffffZ` string names,
/// or nil if the string is not in exactly that form.
func microseconds(rfc3339 text: String) -> Int64? {
    let pattern = #/^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{6})Z$/#
    guard let match = text.wholeMatch(of: pattern) else { return nil }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    guard let date = formatter.date(from: String(match.1) + "Z"), let fraction = Int64(match.2) else { return nil }
    return Int64(date.timeIntervalSince1970.rounded()) * 1_000_000 + fraction
}

/// Whether `text` is a lowercase UUID string.
func isLowercaseUUID(_ text: Any?) -> Bool {
    guard let text = text as? String else { return false }
    return UUID(uuidString: text) != nil && text == text.lowercased()
}

/// The keys every step run has in `--json` output, in the documented order.
let stepRunKeys = [
    "id", "run_id", "step", "status", "input", "output", "last_error", "recovery", "resume", "manual",
    "inserted_at", "updated_at", "completed_at",
]
