import ArgumentParser
import Foundation
import StepRunCore

// The commands that claim, schedule and finish steps, for scripts and manual repair. Each is one
// store operation with the daemon's semantics (SPEC.md), acknowledged only once committed.

private let payloadHelp = "JSON object, @FILE to read it from a file, or @- for standard input."

/// `RUN STEP [--input JSON] [--recovery JSON]`: what `begin` and `schedule` both take.
struct StepArguments: ParsableArguments {
    @Argument(help: "The workflow run id.", transform: IdentifierArgument.uuid) var runID: UUID
    @Argument(help: "The step name.") var step: String
    @Option(help: ArgumentHelp("The step's input (default {}). \(payloadHelp)", valueName: "json")) var input: String?
    @Option(help: ArgumentHelp("Saga recovery metadata. \(payloadHelp)", valueName: "json")) var recovery: String?

    /// The input (`{}` when not given) and recovery payloads, read and checked.
    func payloads() throws -> (input: JSONPayload, recovery: JSONPayload?) {
        try PayloadArgument.checkOneStandardInput([input, recovery])
        return (try PayloadArgument.payload(input, field: "input") ?? .empty, try PayloadArgument.payload(recovery, field: "recovery"))
    }
}

extension OutputOptions {
    /// A claim or schedule outcome: the decision, then the step run.
    func emit(decision: String, _ stepRun: StepRun) {
        emit(
            table: Table(fields: [("decision", decision)] + stepRun.fields),
            json: .object([("decision", .string(decision)), ("step_run", stepRun.json)]))
    }
}

/// `begin RUN STEP`: claim a step, as a worker does before running it.
struct Begin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Claim a step for execution (begin_step).",
        discussion: """
            Prints the decision, execute or skip, and the step run. skip (exit 0) means the step is \
            already running or completed: another delivery owns it.
            """)

    @OptionGroup var step: StepArguments
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let (input, recovery) = try step.payloads()
        let (stepRun, decision) = try await connection.withClient { client in
            try await client.beginStep(
                runID: step.runID, step: step.step, input: input, recovery: recovery, timeout: connection.timeout.duration)
        }
        output.emit(decision: decision.rawValue, stepRun)
    }
}

/// `schedule RUN STEP`: record a step as pending without claiming it.
struct Schedule: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Record a step as scheduled but not yet claimed (schedule_step).",
        discussion: "Prints the decision, schedule or skip (the step already exists; exit 0), and the step run.")

    @OptionGroup var step: StepArguments
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let (input, recovery) = try step.payloads()
        let (stepRun, decision) = try await connection.withClient { client in
            try await client.scheduleStep(
                runID: step.runID, step: step.step, input: input, recovery: recovery, timeout: connection.timeout.duration)
        }
        output.emit(decision: decision.rawValue, stepRun)
    }
}

/// `complete STEP_RUN_ID --output JSON`: finish a running step.
struct Complete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mark a running step completed with its output (complete_step).",
        discussion: "Exits 4 (stale) when the step run is not running, 3 when it does not exist.")

    @Argument(help: "The step run id.", transform: IdentifierArgument.uuid) var stepRunID: UUID
    @Option(help: ArgumentHelp("The step's output. \(payloadHelp)", valueName: "json")) var output: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var format: OutputOptions

    func run() async throws {
        let payload = try PayloadArgument.payload(output, field: "output")
        let stepRun = try await connection.withClient { client in
            try await client.completeStep(stepRunID: stepRunID, output: payload, timeout: connection.timeout.duration)
        }
        format.emit(table: Table(fields: stepRun.fields), json: stepRun.json)
    }
}

/// `fail STEP_RUN_ID --error JSON`: record that a running step failed.
struct Fail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mark a running step failed with its error (fail_step).",
        discussion: "Exits 4 (stale) when the step run is not running, 3 when it does not exist.")

    @Argument(help: "The step run id.", transform: IdentifierArgument.uuid) var stepRunID: UUID
    @Option(help: ArgumentHelp("The failure. \(payloadHelp)", valueName: "json")) var error: String
    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let payload = try PayloadArgument.payload(error, field: "error")
        let stepRun = try await connection.withClient { client in
            try await client.failStep(stepRunID: stepRunID, error: payload, timeout: connection.timeout.duration)
        }
        output.emit(table: Table(fields: stepRun.fields), json: stepRun.json)
    }
}
