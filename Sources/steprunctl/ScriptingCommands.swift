import ArgumentParser
import Foundation
import StepRunClient
import StepRunCore

struct Begin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Claim a step: prints execute or skip and the step run.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Run id.") var run: String
    @Argument(help: "Step name.") var step: String
    @Option(help: "Input, a JSON object (default {}).") var input: String?
    @Option(help: "Recovery metadata, a JSON object.") var recovery: String?

    func run() async throws {
        let runID = try uuid(run, "RUN")
        try await withClient(connection) { client in
            let (stepRun, decision) = try await client.beginStep(
                runID: runID, step: step, input: try payload(input, "input") ?? .empty, recovery: try payload(recovery, "recovery"))
            if connection.json {
                Output.print(json: ["decision": decision.rawValue, "step_run": Output.stepRun(stepRun)] as [String: Any])
            } else {
                print("\(decision.rawValue) \(stepRun.id.uuidString.lowercased()) (\(stepRun.status.rawValue))")
            }
        }
    }
}

struct Schedule: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Schedule a step: prints schedule or skip and the step run.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Run id.") var run: String
    @Argument(help: "Step name.") var step: String
    @Option(help: "Input, a JSON object (default {}).") var input: String?
    @Option(help: "Recovery metadata, a JSON object.") var recovery: String?

    func run() async throws {
        let runID = try uuid(run, "RUN")
        try await withClient(connection) { client in
            let (stepRun, decision) = try await client.scheduleStep(
                runID: runID, step: step, input: try payload(input, "input") ?? .empty, recovery: try payload(recovery, "recovery"))
            if connection.json {
                Output.print(json: ["decision": decision.rawValue, "step_run": Output.stepRun(stepRun)] as [String: Any])
            } else {
                print("\(decision.rawValue) \(stepRun.id.uuidString.lowercased()) (\(stepRun.status.rawValue))")
            }
        }
    }
}

struct Complete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Complete a running step with its output.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Step run id.") var stepRun: String
    @Option(help: "Output, a JSON object.") var output: String = "{}"

    func run() async throws {
        let id = try uuid(stepRun, "STEP_RUN_ID")
        try await withClient(connection) { client in
            let completed = try await client.completeStep(stepRunID: id, output: try payload(output, "output") ?? .empty)
            if connection.json { Output.print(json: Output.stepRun(completed)) } else { print("completed \(completed.id.uuidString.lowercased())") }
        }
    }
}

struct Fail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Fail a running step with its error.")
    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "Step run id.") var stepRun: String
    @Option(help: "Error, a JSON object.") var error: String = "{}"

    func run() async throws {
        let id = try uuid(stepRun, "STEP_RUN_ID")
        try await withClient(connection) { client in
            let failed = try await client.failStep(stepRunID: id, error: try payload(error, "error") ?? .empty)
            if connection.json { Output.print(json: Output.stepRun(failed)) } else { print("failed \(failed.id.uuidString.lowercased())") }
        }
    }
}
