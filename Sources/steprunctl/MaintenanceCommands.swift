import ArgumentParser
import Foundation
import StepRunCore

/// `purge-run RUN`: erase a run (retention, GDPR-style erasure).
struct PurgeRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "purge-run",
        abstract: "Delete every step run and attempt of a run (purge_run). This cannot be undone.",
        discussion: "A run with nothing recorded purges zero rows and exits 0.")

    @Argument(help: "The workflow run id.", transform: IdentifierArgument.uuid) var runID: UUID
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let counts = try await connection.withClient { client in
            try await client.purgeRun(runID: runID, timeout: connection.timeout.duration)
        }
        output.emit(
            table: Table(fields: [
                ("run_id", runID.lowercased),
                ("step_runs_deleted", String(counts.stepRuns)),
                ("attempts_deleted", String(counts.attempts)),
            ]),
            json: .object([
                ("run_id", .string(runID.lowercased)),
                ("step_runs_deleted", .int(Int64(counts.stepRuns))),
                ("attempts_deleted", .int(Int64(counts.attempts))),
            ]))
    }
}
