import ArgumentParser
import Foundation
import StepRunClient
import StepRunCore

@main
struct Steprunctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steprunctl",
        abstract: "Inspect and script a steprund daemon.",
        discussion: "Exit codes: 0 ok, 1 other error, 3 not found, 4 stale, 5 unavailable, 6 invalid argument, 64 usage.",
        subcommands: [
            Health.self, Get.self, Statuses.self, Completed.self, Outputs.self, Compensation.self, Attempts.self,
            PurgeRun.self, Begin.self, Schedule.self, Complete.self, Fail.self,
        ])
}

/// Runs `body` with a connected client, closing it afterwards and mapping store errors to exit codes.
func withClient(_ options: ConnectionOptions, _ body: (StepRunClient) async throws -> Void) async throws {
    let client = try options.makeClient()
    do {
        try await runReporting { try await body(client) }
    } catch {
        await client.close()
        throw error
    }
    await client.close()
}

struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that the daemon serves and reaches its database.")
    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        try await withClient(connection) { client in
            let hello = try await client.connect()
            let health = try await client.health()
            if connection.json {
                Output.print(json: [
                    "serving": health.serving, "database_latency_us": health.databaseLatencyMicros, "message": health.message,
                    "server": hello.serverName, "protocol_version": hello.protocolVersion,
                ] as [String: Any])
            } else {
                print("\(health.serving ? "serving" : "NOT serving"): \(health.message)")
                print("server \(hello.serverName), protocol \(hello.protocolVersion), database round trip \(health.databaseLatencyMicros) µs")
            }
            if !health.serving { throw ExitCode(ExitStatus.unavailable) }
        }
    }
}

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show one step run.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Run id.") var run: String
    @Argument(help: "Step name.") var step: String

    func run() async throws {
        let runID = try uuid(run, "RUN")
        try await withClient(connection) { client in
            guard let stepRun = try await client.getStepRun(runID: runID, step: step) else {
                throw StepRunError.notFound("run \(run) has no step \"\(step)\"")
            }
            if connection.json { Output.print(json: Output.stepRun(stepRun)) } else { print(Output.stepRunDetail(stepRun)) }
        }
    }
}

struct Statuses: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List every step of a run with its status.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Run id.") var run: String

    func run() async throws {
        let runID = try uuid(run, "RUN")
        try await withClient(connection) { client in
            let statuses = try await client.stepStatuses(runID: runID)
            if connection.json {
                Output.print(json: statuses.mapValues(\.rawValue))
            } else {
                print(Output.table(["STEP", "STATUS"], statuses.sorted { $0.key < $1.key }.map { [$0.key, $0.value.rawValue] }))
            }
        }
    }
}

struct Completed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a run's completed steps in completion order.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Run id.") var run: String

    func run() async throws {
        let runID = try uuid(run, "RUN")
        try await withClient(connection) { client in
            let steps = try await client.completedSteps(runID: runID)
            if connection.json { Output.print(json: steps) } else { print(Output.table(["#", "STEP"], steps.enumerated().map { ["\($0.offset + 1)", $0.element] })) }
        }
    }
}

struct Outputs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the outputs of a run's completed steps in completion order.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Run id.") var run: String

    func run() async throws {
        let runID = try uuid(run, "RUN")
        try await withClient(connection) { client in
            let outputs = try await client.completedOutputs(runID: runID)
            if connection.json {
                Output.print(json: outputs.map { Output.object($0) })
            } else {
                print(Output.table(["#", "OUTPUT"], outputs.enumerated().map { ["\($0.offset + 1)", $0.element.text] }))
            }
        }
    }
}

struct Compensation: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List a run's completed step runs in saga undo order (newest first).")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Run id.") var run: String

    func run() async throws {
        let runID = try uuid(run, "RUN")
        try await withClient(connection) { client in
            let runs = try await client.completedStepRunsForCompensation(runID: runID)
            if connection.json { Output.print(json: runs.map(Output.stepRun)) } else { print(Output.stepRunRows(runs)) }
        }
    }
}

struct Attempts: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the attempts of a step run.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Step run id.") var stepRun: String

    func run() async throws {
        let stepRunID = try uuid(stepRun, "STEP_RUN_ID")
        try await withClient(connection) { client in
            let attempts = try await client.listAttempts(stepRunID: stepRunID)
            if connection.json {
                Output.print(json: attempts.map(Output.attempt))
            } else {
                print(Output.table(
                    ["#", "STATUS", "ID", "UPDATED_AT", "ERROR"],
                    attempts.map { ["\($0.attemptNumber)", $0.status.rawValue, $0.id.uuidString.lowercased(), Output.time($0.updatedAt), $0.error?.text ?? "-"] }))
            }
        }
    }
}

struct PurgeRun: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "purge-run", abstract: "Delete every step run and attempt of a run.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Run id.") var run: String

    func run() async throws {
        let runID = try uuid(run, "RUN")
        try await withClient(connection) { client in
            let counts = try await client.purgeRun(runID: runID)
            if connection.json {
                Output.print(json: ["step_runs": counts.stepRuns, "attempts": counts.attempts])
            } else {
                print("deleted \(counts.stepRuns) step runs and \(counts.attempts) attempts")
            }
        }
    }
}
