import Foundation
import StepRunCore
import Testing

@Suite("Reading a run")
struct ReadCommandTests {
    @Test func getPrintsEveryFieldOfTheStepRun() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        let stepRun = try await daemon.completedStep(
            runID: runID, step: "charge", input: ["amount": 42], output: ["receipt": "r-1"])

        let result = try await Steprunctl.run(["get", runID.uuidString, "charge"] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.map { $0.split(separator: " ").first.map(String.init) ?? "" } == stepRunKeys)
        #expect(lines.contains("id            \(stepRun.id.uuidString.lowercased())"))
        #expect(lines.contains("run_id        \(runID.uuidString.lowercased())"))
        #expect(lines.contains("status        completed"))
        #expect(lines.contains(#"input         {"amount":42}"#))
        #expect(lines.contains(#"output        {"receipt":"r-1"}"#))
        #expect(lines.contains("last_error    -"))
        #expect(lines.contains("completed_at  \(try #require(stepRun.completedAt).rfc3339Expected)"))
        #expect(result.stderr.isEmpty)
    }

    @Test func getJSONHasTheDocumentedShape() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        let stepRun = try await daemon.completedStep(
            runID: runID, step: "charge", input: ["amount": 42], output: ["receipt": "r-1"], recovery: ["undo": "refund"])

        let result = try await Steprunctl.run(["get", runID.uuidString.lowercased(), "charge", "--json"] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.hasSuffix("}\n") && result.stdout.filter { $0 == "\n" }.count == 1)
        let object = try parseJSONObject(result.stdout)
        #expect(Set(object.keys) == Set(stepRunKeys))
        #expect(object["id"] as? String == stepRun.id.uuidString.lowercased())
        #expect(isLowercaseUUID(object["run_id"]))
        #expect(object["step"] as? String == "charge")
        #expect(object["status"] as? String == "completed")
        #expect((object["input"] as? [String: Any])?["amount"] as? Int == 42)
        #expect((object["output"] as? [String: Any])?["receipt"] as? String == "r-1")
        #expect((object["recovery"] as? [String: Any])?["undo"] as? String == "refund")
        #expect(object["last_error"] is NSNull && object["resume"] is NSNull && object["manual"] is NSNull)
        #expect(microseconds(rfc3339: object["inserted_at"] as? String ?? "") == stepRun.insertedAt.microsecondsSinceEpoch)
        #expect(microseconds(rfc3339: object["updated_at"] as? String ?? "") == stepRun.updatedAt.microsecondsSinceEpoch)
        #expect(microseconds(rfc3339: object["completed_at"] as? String ?? "") == stepRun.completedAt?.microsecondsSinceEpoch)
    }

    @Test func getKeepsLargeNumbersInPayloadsExact() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        let output = try JSONPayload(validating: #"{"big": 123456789012345678901234567890, "x": 0.1}"#)
        try await daemon.completedStep(runID: runID, step: "count", output: output)

        let result = try await Steprunctl.run(["get", runID.uuidString, "count", "--json"] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        #expect(result.stdout.contains(#""output":{"x":0.1,"big":123456789012345678901234567890}"#)
            || result.stdout.contains(#""output":{"big":123456789012345678901234567890,"x":0.1}"#))
    }

    @Test(arguments: [false, true])
    func getOfAMissingStepExitsNotFound(json: Bool) async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()

        let result = try await Steprunctl.run(["get", runID.uuidString, "nope"] + (json ? ["--json"] : []) + daemon.unixFlags)

        #expect(result.status == 3, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines == [#"steprunctl: NOT_FOUND: run \#(runID.uuidString.lowercased()) has no step "nope""#])
    }

    @Test func statusesTableListsEveryStepSortedByName() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        try await daemon.completedStep(runID: runID, step: "charge", output: [:])
        _ = try await daemon.runningStep(runID: runID, step: "ship")
        _ = try await daemon.repository.scheduleStep(runID: runID, step: "a-notify")
        let failed = try await daemon.runningStep(runID: runID, step: "b-reserve")
        try await daemon.repository.failStep(stepRunID: failed.id, error: ["reason": "no stock"])

        let result = try await Steprunctl.run(["statuses", runID.uuidString] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == """
            STEP       STATUS
            a-notify   pending
            b-reserve  failed
            charge     completed
            ship       running

            """)
    }

    @Test func statusesJSONMapsEachStepToItsStatus() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        try await daemon.completedStep(runID: runID, step: "charge", output: [:])
        _ = try await daemon.runningStep(runID: runID, step: "ship")

        let result = try await Steprunctl.run(["statuses", runID.uuidString, "--json"] + daemon.unixFlags)

        #expect(result.status == 0, "\(result)")
        #expect(result.stdout == #"{"charge":"completed","ship":"running"}"# + "\n")
    }

    @Test func statusesOfAnUnknownRunIsEmpty() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()

        let table = try await Steprunctl.run(["statuses", runID.uuidString] + daemon.unixFlags)
        let json = try await Steprunctl.run(["statuses", runID.uuidString, "--json"] + daemon.unixFlags)

        #expect(table.status == 0 && table.stdout == "STEP  STATUS\n", "\(table)")
        #expect(json.status == 0 && json.stdout == "{}\n", "\(json)")
    }

    @Test func completedListsStepsInCompletionOrder() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        for step in ["reserve", "charge", "ship"] {
            try await daemon.completedStep(runID: runID, step: step, output: [:])
        }
        _ = try await daemon.runningStep(runID: runID, step: "notify")

        let table = try await Steprunctl.run(["completed", runID.uuidString] + daemon.unixFlags)
        let json = try await Steprunctl.run(["completed", runID.uuidString, "--json"] + daemon.unixFlags)

        #expect(table.status == 0, "\(table)")
        #expect(table.stdout == """
            #  STEP
            1  reserve
            2  charge
            3  ship

            """)
        #expect(json.status == 0, "\(json)")
        #expect(try parseJSONArray(json.stdout) as? [String] == ["reserve", "charge", "ship"])
    }

    @Test func outputsListsOutputsInCompletionOrder() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        try await daemon.completedStep(runID: runID, step: "reserve", output: ["sku": "A-1", "qty": 2])
        try await daemon.completedStep(runID: runID, step: "charge", output: ["receipt": "r-9"])

        let table = try await Steprunctl.run(["outputs", runID.uuidString] + daemon.unixFlags)
        let json = try await Steprunctl.run(["outputs", runID.uuidString, "--json"] + daemon.unixFlags)

        #expect(table.status == 0, "\(table)")
        #expect(table.stdout == """
            #  OUTPUT
            1  {"qty":2,"sku":"A-1"}
            2  {"receipt":"r-9"}

            """)
        #expect(json.status == 0, "\(json)")
        let outputs = try #require(try parseJSONArray(json.stdout) as? [[String: Any]])
        #expect(outputs.count == 2)
        #expect(outputs.first?["sku"] as? String == "A-1" && outputs.first?["qty"] as? Int == 2)
        #expect(outputs.last?["receipt"] as? String == "r-9")
    }

    @Test func compensationListsMostRecentCompletionFirst() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        let reserve = try await daemon.completedStep(runID: runID, step: "reserve", output: [:], recovery: ["undo": "release"])
        let charge = try await daemon.completedStep(runID: runID, step: "charge", output: [:], recovery: ["undo": "refund"])

        let table = try await Steprunctl.run(["compensation", runID.uuidString] + daemon.unixFlags)
        let json = try await Steprunctl.run(["compensation", runID.uuidString, "--json"] + daemon.unixFlags)

        #expect(table.status == 0, "\(table)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0] == "#  STEP     STEP_RUN_ID                           COMPLETED_AT                 RECOVERY")
        #expect(lines[1] == "1  charge   \(charge.id.uuidString.lowercased())  \(try #require(charge.completedAt).rfc3339Expected)  {\"undo\":\"refund\"}")
        #expect(lines[2] == "2  reserve  \(reserve.id.uuidString.lowercased())  \(try #require(reserve.completedAt).rfc3339Expected)  {\"undo\":\"release\"}")
        #expect(json.status == 0, "\(json)")
        let stepRuns = try #require(try parseJSONArray(json.stdout) as? [[String: Any]])
        #expect(stepRuns.map { $0["step"] as? String } == ["charge", "reserve"])
        #expect(stepRuns.allSatisfy { Set($0.keys) == Set(stepRunKeys) })
    }

    @Test func compensationTableCutsLongRecoveryPayloads() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        let long = String(repeating: "x", count: 200)
        try await daemon.completedStep(runID: runID, step: "charge", output: [:], recovery: ["note": .string(long)])

        let table = try await Steprunctl.run(["compensation", runID.uuidString] + daemon.unixFlags)
        let json = try await Steprunctl.run(["compensation", runID.uuidString, "--json"] + daemon.unixFlags)

        let row = try #require(table.stdout.split(separator: "\n").last)
        #expect(row.hasSuffix("…"))
        #expect(row.split(separator: "  ").last?.count == 60)
        #expect(json.stdout.contains(long))
    }

    @Test func attemptsListsTheAttemptsOfAStepRunByNumber() async throws {
        let daemon = try await CtlDaemon.shared()
        let stepRun = try await daemon.runningStep(runID: UUID.v7(), step: "charge")
        let first = try await daemon.repository.beginAttempt(stepRunID: stepRun.id)
        try await daemon.repository.failAttempt(attemptID: first.id, error: ["reason": "timeout"])
        let second = try await daemon.repository.beginAttempt(stepRunID: stepRun.id)

        let table = try await Steprunctl.run(["attempts", stepRun.id.uuidString] + daemon.unixFlags)
        let json = try await Steprunctl.run(["attempts", stepRun.id.uuidString, "--json"] + daemon.unixFlags)

        #expect(table.status == 0, "\(table)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines[0].hasPrefix("ATTEMPT  ID                                    STATUS   INSERTED_AT"))
        #expect(lines[1].hasPrefix("1        \(first.id.uuidString.lowercased())  failed   "))
        #expect(lines[1].hasSuffix(#"  {"reason":"timeout"}"#))
        #expect(lines[2].hasPrefix("2        \(second.id.uuidString.lowercased())  running  "))
        #expect(lines[2].hasSuffix("  -"))

        #expect(json.status == 0, "\(json)")
        let attempts = try #require(try parseJSONArray(json.stdout) as? [[String: Any]])
        #expect(attempts.count == 2)
        #expect(Set(attempts[0].keys) == ["id", "step_run_id", "attempt_number", "status", "error", "inserted_at", "updated_at"])
        #expect(attempts.map { $0["attempt_number"] as? Int } == [1, 2])
        #expect(attempts.map { $0["status"] as? String } == ["failed", "running"])
        #expect(attempts[0]["step_run_id"] as? String == stepRun.id.uuidString.lowercased())
        #expect((attempts[0]["error"] as? [String: Any])?["reason"] as? String == "timeout")
        #expect(attempts[1]["error"] is NSNull)
        #expect(microseconds(rfc3339: attempts[1]["inserted_at"] as? String ?? "") == second.insertedAt.microsecondsSinceEpoch)
    }

    @Test func attemptsOfAMissingStepRunExitsNotFound() async throws {
        let daemon = try await CtlDaemon.shared()

        let result = try await Steprunctl.run(["attempts", UUID.v7().uuidString] + daemon.unixFlags)

        #expect(result.status == 3, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines.count == 1 && result.stderrLines[0].hasPrefix("steprunctl: NOT_FOUND: "))
    }

    @Test func tablesShowControlCharactersInStepNamesEscaped() async throws {
        let daemon = try await CtlDaemon.shared()
        let runID = UUID.v7()
        try await daemon.completedStep(runID: runID, step: "evil\n\u{1B}[31mred", output: [:])

        let table = try await Steprunctl.run(["completed", runID.uuidString] + daemon.unixFlags)
        let json = try await Steprunctl.run(["completed", runID.uuidString, "--json"] + daemon.unixFlags)

        #expect(table.stdout == "#  STEP\n1  evil\\n\\u{1b}[31mred\n", "\(table)")
        #expect(try parseJSONArray(json.stdout) as? [String] == ["evil\n\u{1B}[31mred"])
    }
}

extension Timestamp {
    /// The RFC 3339 text steprunctl should print, computed independently of its implementation.
    var rfc3339Expected: String {
        let seconds = microsecondsSinceEpoch / 1_000_000
        let micros = microsecondsSinceEpoch % 1_000_000
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        let whole = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
        let fraction = String(micros)
        return whole.dropLast() + "." + String(repeating: "0", count: 6 - fraction.count) + fraction + "Z"
    }
}
