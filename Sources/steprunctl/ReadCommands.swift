import ArgumentParser
import Foundation
import StepRunCore

// The commands that read a run: none of them changes anything.

/// `get RUN STEP`: one step run, every field.
struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show one step of a run, with its payloads.",
        discussion: "Exits 3 when the run has no such step.")

    @Argument(help: "The workflow run id.", transform: IdentifierArgument.uuid) var runID: UUID
    @Argument(help: "The step name.") var step: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let stepRun = try await connection.withClient { client in
            try await client.getStepRun(runID: runID, step: step, timeout: connection.timeout.duration)
        }
        guard let stepRun else {
            throw StepRunError.notFound("run \(runID.lowercased) has no step \"\(step)\"")
        }
        output.emit(table: Table(fields: stepRun.fields), json: stepRun.json)
    }
}

/// `statuses RUN`: every persisted step and its status.
struct Statuses: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the status of every recorded step of a run.")

    @Argument(help: "The workflow run id.", transform: IdentifierArgument.uuid) var runID: UUID
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let statuses = try await connection.withClient { client in
            try await client.stepStatuses(runID: runID, timeout: connection.timeout.duration)
        }
        // The store answers with a map; sort by step name (as UTF-8 bytes) for a stable order.
        let sorted = statuses.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        output.emit(
            table: Table(columns: ["STEP", "STATUS"], rows: sorted.map { [$0.key, $0.value.rawValue] }),
            json: .object(sorted.map { ($0.key, .string($0.value.rawValue)) }))
    }
}

/// `completed RUN`: completed step names in completion order.
struct Completed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a run's completed steps, oldest completion first.")

    @Argument(help: "The workflow run id.", transform: IdentifierArgument.uuid) var runID: UUID
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let steps = try await connection.withClient { client in
            try await client.completedSteps(runID: runID, timeout: connection.timeout.duration)
        }
        output.emit(
            table: Table(columns: ["#", "STEP"], rows: steps.enumerated().map { [String($0.offset + 1), $0.element] }),
            json: .array(steps.map { .string($0) }))
    }
}

/// `outputs RUN`: completed outputs in completion order (the order callers merge them in).
struct Outputs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the outputs of a run's completed steps, oldest completion first.",
        discussion: "Merged in this order, a later output wins a key conflict. A null output reads as {}.")

    @Argument(help: "The workflow run id.", transform: IdentifierArgument.uuid) var runID: UUID
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let outputs = try await connection.withClient { client in
            try await client.completedOutputs(runID: runID, timeout: connection.timeout.duration)
        }
        output.emit(
            table: Table(
                columns: ["#", "OUTPUT"], rows: outputs.enumerated().map { [String($0.offset + 1), Cell.payload($0.element)] }),
            json: .array(outputs.map { .payload($0) }))
    }
}

/// `compensation RUN`: completed step runs in saga undo order.
struct Compensation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List a run's completed step runs in compensation order, most recent completion first.")

    @Argument(help: "The workflow run id.", transform: IdentifierArgument.uuid) var runID: UUID
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let stepRuns = try await connection.withClient { client in
            try await client.completedStepRunsForCompensation(runID: runID, timeout: connection.timeout.duration)
        }
        output.emit(
            table: Table(
                columns: ["#", "STEP", "STEP_RUN_ID", "COMPLETED_AT", "RECOVERY"],
                rows: stepRuns.enumerated().map { index, stepRun in
                    [
                        String(index + 1), stepRun.step, stepRun.id.lowercased, Cell.timestamp(stepRun.completedAt),
                        Table.truncated(Cell.payload(stepRun.recovery), to: Cell.payloadWidth),
                    ]
                }),
            json: .array(stepRuns.map(\.json)))
    }
}

/// `attempts STEP_RUN_ID`: the attempt history of one step run.
struct Attempts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the attempts of a step run by number.",
        discussion: "Exits 3 when the step run does not exist.")

    @Argument(help: "The step run id (from get, begin or schedule).", transform: IdentifierArgument.uuid)
    var stepRunID: UUID
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let attempts = try await connection.withClient { client in
            try await client.listAttempts(stepRunID: stepRunID, timeout: connection.timeout.duration)
        }
        output.emit(
            table: Table(
                columns: ["ATTEMPT", "ID", "STATUS", "INSERTED_AT", "UPDATED_AT", "ERROR"],
                rows: attempts.map { attempt in
                    [
                        String(attempt.attemptNumber), attempt.id.lowercased, attempt.status.rawValue,
                        attempt.insertedAt.description, attempt.updatedAt.description,
                        Table.truncated(Cell.payload(attempt.error), to: Cell.payloadWidth),
                    ]
                }),
            json: .array(attempts.map(\.json)))
    }
}
