import Foundation
import StepRunCore
import Testing

/// steprunctl's list commands follow the daemon's pages: a run whose outputs outgrow several
/// responses of the daemon (`CtlDaemon.withSmallFrames`, 64 KiB) is printed whole.
@Suite("Listing a large run")
struct LargeRunTests {
    /// Five completed steps with 24 KiB outputs each (120 KiB in all, about two frames), completed
    /// in the order given; returns their step runs.
    static func largeRun(_ daemon: CtlDaemon, runID: UUID) async throws -> [StepRun] {
        var stepRuns: [StepRun] = []
        for index in 0..<5 {
            let output: JSONPayload = ["n": .int(Int64(index)), "blob": .string(String(repeating: "o", count: 24 << 10))]
            stepRuns.append(try await daemon.completedStep(runID: runID, step: "step-\(index)", output: output))
        }
        return stepRuns
    }

    @Test func outputsJSONPrintsEveryOutputOfARunLargerThanOneResponse() async throws {
        let daemon = try await CtlDaemon.withSmallFrames()
        let runID = UUID.v7()
        _ = try await Self.largeRun(daemon, runID: runID)

        let json = try await Steprunctl.run(["outputs", runID.uuidString, "--json"] + daemon.unixFlags)

        #expect(json.status == 0, "\(json)")
        #expect(json.stdout.utf8.count > CtlDaemon.smallFrameBytes)
        let outputs = try #require(try parseJSONArray(json.stdout) as? [[String: Any]])
        #expect(outputs.map { $0["n"] as? Int } == [0, 1, 2, 3, 4])
    }

    @Test func compensationPrintsEveryStepRunOfARunLargerThanOneResponse() async throws {
        let daemon = try await CtlDaemon.withSmallFrames()
        let runID = UUID.v7()
        let stepRuns = try await Self.largeRun(daemon, runID: runID)

        let json = try await Steprunctl.run(["compensation", runID.uuidString, "--json"] + daemon.unixFlags)

        #expect(json.status == 0, "\(json)")
        let listed = try #require(try parseJSONArray(json.stdout) as? [[String: Any]])
        #expect(listed.map { $0["id"] as? String } == stepRuns.reversed().map { $0.id.uuidString.lowercased() })
    }
}
