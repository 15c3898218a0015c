import Foundation
import StepRunCore
import Testing

@Suite("Usage errors")
struct UsageTests {
    @Test(arguments: [
        ["get", "not-a-uuid", "charge"],
        ["frobnicate"],
        ["get"],
        ["complete", "0193b1e2-7c1f-7a00-8000-000000000000"],
        ["health", "--timeout", "soon"],
        ["health", "--timeout", "0s"],
        ["health", "--tcp", "no-port"],
        ["health", "--unix-socket", "/tmp/a.sock", "--tcp", "127.0.0.1:7420"],
        ["statuses", "0193b1e2-7c1f-7a00-8000-000000000000", "--jsn"],
    ])
    func aCommandLineThatDoesNotParseExitsWithUsage(arguments: [String]) async throws {
        let result = try await Steprunctl.run(arguments)

        #expect(result.status == 2, "\(result)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines.count == 1 && result.stderrLines[0].hasPrefix("steprunctl: "), "\(result)")
    }

    @Test func aMalformedTCPAddressInTheEnvironmentExitsWithUsage() async throws {
        let result = try await Steprunctl.run(["health"], environment: ["STEPRUN_TCP": "nowhere"])

        #expect(result.status == 2, "\(result)")
        #expect(result.stderrLines == [#"steprunctl: STEPRUN_TCP must be HOST:PORT, got "nowhere""#])
    }

    @Test func readingTwoPayloadsFromStandardInputExitsWithUsage() async throws {
        let result = try await Steprunctl.run(
            ["begin", UUID.v7().uuidString, "charge", "--input", "@-", "--recovery", "@-", "--unix-socket", "/nonexistent"],
            stdin: "{}")

        #expect(result.status == 2, "\(result)")
        #expect(result.stderrLines == ["steprunctl: only one payload can be read from standard input (@-)"])
    }

    @Test func helpPrintsToStandardOutputAndExitsZero() async throws {
        let result = try await Steprunctl.run(["--help"])

        #expect(result.status == 0, "\(result)")
        for command in ["health", "get", "statuses", "completed", "outputs", "compensation", "attempts", "begin",
                        "schedule", "complete", "fail", "purge-run"] {
            #expect(result.stdout.contains("\n  \(command) "), "help lists \(command)")
        }
    }
}
