import Foundation
import StepRunCore
import Testing

@Suite("Claiming, scheduling and finishing steps")
struct WriteCommandTests {
    @Test func beginExecutesTheFirstDeliveryAndSkipsTheNext() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()

        let first = try await Steprunctl.run(
            ["begin", runID.uuidString, "charge", "--input", #"{"amount": 42}"#, "--recovery", #"{"undo":"refund"}"#, "--json"]
                + daemon.unixFlags)
        let second = try await Steprunctl.run(["begin", runID.uuidString, "charge", "--json"] + daemon.unixFlags)

        #expect(first.status == 0, "\(first)")
        let claimed = try parseJSONObject(first.stdout)
        #expect(Set(claimed.keys) == ["decision", "step_run"])
        #expect(claimed["decision"] as? String == "execute")
        let stepRun = try #require(claimed["step_run"] as? [String: Any])
        #expect(Set(stepRun.keys) == Set(stepRunKeys))
        #expect(stepRun["status"] as? String == "running")
        #expect((stepRun["input"] as? [String: Any])?["amount"] as? Int == 42)
        #expect((stepRun["recovery"] as? [String: Any])?["undo"] as? String == "refund")

        #expect(second.status == 0, "\(second)")
        let skipped = try parseJSONObject(second.stdout)
        #expect(skipped["decision"] as? String == "skip")
        #expect((skipped["step_run"] as? [String: Any])?["id"] as? String == stepRun["id"] as? String)
    }

    @Test func beginTableShowsTheDecisionAboveTheStepRun() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()

        let result = try await Steprunctl.run(["begin", runID.uuidString, "charge"] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "decision      execute")
        #expect(lines.contains("step          charge"))
        #expect(lines.contains("status        running"))
        #expect(lines.contains("input         {}"))
        #expect(lines.contains("output        -"))
        let stored = try #require(try await daemon.repository.getStepRun(runID: runID, step: "charge"))
        #expect(lines.contains("id            \(stored.id.uuidString.lowercased())"))
    }

    @Test func scheduleRecordsAPendingStepThatBeginThenClaims() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()

        let scheduled = try await Steprunctl.run(
            ["schedule", runID.uuidString, "ship", "--input", #"{"to":"Oslo"}"#, "--json"] + daemon.unixFlags)
        let again = try await Steprunctl.run(["schedule", runID.uuidString, "ship", "--json"] + daemon.unixFlags)
        let claimed = try await Steprunctl.run(["begin", runID.uuidString, "ship", "--input", #"{"to":"ignored"}"#, "--json"] + daemon.unixFlags)

        #expect(scheduled.status == 0, "\(scheduled)")
        let first = try parseJSONObject(scheduled.stdout)
        #expect(first["decision"] as? String == "schedule")
        #expect((first["step_run"] as? [String: Any])?["status"] as? String == "pending")
        #expect(try parseJSONObject(again.stdout)["decision"] as? String == "skip")
        let begun = try parseJSONObject(claimed.stdout)
        #expect(begun["decision"] as? String == "execute")
        let stepRun = try #require(begun["step_run"] as? [String: Any])
        #expect((stepRun["input"] as? [String: Any])?["to"] as? String == "Oslo")
    }

    @Test func completeMarksARunningStepCompleted() async throws {
        let daemon = try await CtlDaemon.shared()
        let stepRun = try await daemon.runningStep(runID: UUID.v7(), step: "charge")

        let result = try await Steprunctl.run(
            ["complete", stepRun.id.uuidString, "--output", #"{"receipt":"r-1"}"#, "--json"] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        let object = try parseJSONObject(result.stdout)
        #expect(object["status"] as? String == "completed")
        #expect((object["output"] as? [String: Any])?["receipt"] as? String == "r-1")
        #expect(microseconds(rfc3339: object["completed_at"] as? String ?? "") != nil)
        let stored = try #require(try await daemon.repository.getStepRun(runID: stepRun.runID, step: "charge"))
        #expect(stored.status == .completed && stored.output == ["receipt": "r-1"])
    }

    @Test func completeTableShowsTheUpdatedStepRun() async throws {
        let daemon = try await CtlDaemon.shared()
        let stepRun = try await daemon.runningStep(runID: UUID.v7(), step: "charge")

        let result = try await Steprunctl.run(["complete", stepRun.id.uuidString, "--output", "{}"] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains("\nstatus        completed\n"))
        #expect(result.stdout.contains("\noutput        {}\n"))
    }

    @Test func completingAStepThatIsNoLongerRunningExitsStale() async throws {
        let daemon = try await CtlDaemon.shared()
        let stepRun = try await daemon.completedStep(runID: UUID.v7(), step: "charge", output: ["receipt": "r-1"])

        let result = try await Steprunctl.run(["complete", stepRun.id.uuidString, "--output", #"{"receipt":"r-2"}"#] + daemon.unixFlags)

        #expect(result.status == 4, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines == ["steprunctl: FAILED_PRECONDITION: stale_step_run: the step run is completed"])
        let stored = try #require(try await daemon.repository.getStepRun(runID: stepRun.runID, step: "charge"))
        #expect(stored.output == ["receipt": "r-1"])
    }

    @Test func failRecordsTheErrorOnARunningStep() async throws {
        let daemon = try await CtlDaemon.shared()
        let stepRun = try await daemon.runningStep(runID: UUID.v7(), step: "charge")

        let result = try await Steprunctl.run(
            ["fail", stepRun.id.uuidString, "--error", #"{"reason":"card declined"}"#, "--json"] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        let object = try parseJSONObject(result.stdout)
        #expect(object["status"] as? String == "failed")
        #expect((object["last_error"] as? [String: Any])?["reason"] as? String == "card declined")
    }

    @Test func failingAFailedStepExitsStale() async throws {
        let daemon = try await CtlDaemon.shared()
        let stepRun = try await daemon.runningStep(runID: UUID.v7(), step: "charge")
        try await daemon.repository.failStep(stepRunID: stepRun.id, error: ["reason": "first"])

        let result = try await Steprunctl.run(["fail", stepRun.id.uuidString, "--error", "{}"] + daemon.unixFlags)

        #expect(result.status == 4, "\(result)")
        #expect(result.stderrLines == ["steprunctl: FAILED_PRECONDITION: stale_step_run: the step run is failed"])
    }

    @Test func completingAMissingStepRunExitsNotFound() async throws {
        let daemon = try await CtlDaemon.shared()

        let result = try await Steprunctl.run(["complete", UUID.v7().uuidString, "--output", "{}"] + daemon.unixFlags)

        #expect(result.status == 3, "\(result)")
        #expect(result.stderrLines.count == 1 && result.stderrLines[0].hasPrefix("steprunctl: NOT_FOUND: "))
    }

    @Test(arguments: ["[1]", "\"text\"", "null", "{\"unterminated\": ", "not json"])
    func aPayloadThatIsNotAJSONObjectExitsInvalidArgument(payload: String) async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()

        let result = try await Steprunctl.run(["begin", runID.uuidString, "charge", "--input", payload] + daemon.unixFlags)

        #expect(result.status == 6, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines.count == 1 && result.stderrLines[0].hasPrefix("steprunctl: INVALID_ARGUMENT: input must be a JSON object"))
        #expect(try await daemon.repository.getStepRun(runID: runID, step: "charge") == nil)
    }

    @Test func aStepNameTheDaemonRejectsExitsInvalidArgument() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()

        let result = try await Steprunctl.run(["begin", runID.uuidString, String(repeating: "s", count: 256)] + daemon.unixFlags)

        #expect(result.status == 6, "\(result)")
        #expect(result.stderrLines.count == 1 && result.stderrLines[0].hasPrefix("steprunctl: INVALID_ARGUMENT: "))
    }

    @Test func payloadsCanBeReadFromAFileOrStandardInput() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("steprunctl-input-\(UUID().uuidString).json")
        try Data("{\"amount\": 42}\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }

        let begun = try await Steprunctl.run(["begin", runID.uuidString, "charge", "--input", "@\(file.path)", "--json"] + daemon.unixFlags)
        let id = try #require((try parseJSONObject(begun.stdout)["step_run"] as? [String: Any])?["id"] as? String)
        let completed = try await Steprunctl.run(
            ["complete", id, "--output", "@-", "--json"] + daemon.unixFlags, stdin: #"{"receipt": "from-stdin"}"#)

        #expect(begun.status == 0, "\(begun)")
        #expect(completed.status == 0, "\(completed)")
        let stored = try #require(try await daemon.repository.getStepRun(runID: runID, step: "charge"))
        #expect(stored.input == ["amount": 42])
        #expect(stored.output == ["receipt": "from-stdin"])
    }

    @Test func aPayloadFileThatCannotBeReadExitsInvalidArgument() async throws {
        let daemon = try await CtlDaemon.shared()

        let result = try await Steprunctl.run(
            ["begin", UUID.v7().uuidString, "charge", "--input", "@/nonexistent/steprunctl-input.json"] + daemon.unixFlags)

        #expect(result.status == 6, "\(result)")
        #expect(result.stderrLines.count == 1 && result.stderrLines[0].hasPrefix("steprunctl: input: cannot read /nonexistent/steprunctl-input.json"))
    }

    @Test func purgeRunDeletesEveryStepRunAndAttemptOfTheRun() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        let charge = try await daemon.completedStep(runID: runID, step: "charge", output: [:])
        _ = try await daemon.repository.recordAttempt(stepRunID: charge.id, attemptNumber: 1, status: .completed)
        _ = try await daemon.runningStep(runID: runID, step: "ship")
        let otherRun = UUID.v7()
        try await daemon.completedStep(runID: otherRun, step: "charge", output: [:])

        let json = try await Steprunctl.run(["purge-run", runID.uuidString, "--json"] + daemon.unixFlags)
        let table = try await Steprunctl.run(["purge-run", runID.uuidString] + daemon.unixFlags)

        #expect(json.status == 0, "\(json)")
        #expect(json.stdout == #"{"run_id":"\#(runID.uuidString.lowercased())","step_runs_deleted":2,"attempts_deleted":1}"# + "\n")
        #expect(table.status == 0, "\(table)")
        #expect(table.stdout == """
            run_id             \(runID.uuidString.lowercased())
            step_runs_deleted  0
            attempts_deleted   0

            """)
        #expect(try await daemon.repository.stepStatuses(runID: runID).isEmpty)
        #expect(try await daemon.repository.stepStatuses(runID: otherRun) == ["charge": .completed])
    }
}
