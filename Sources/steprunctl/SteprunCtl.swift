import ArgumentParser
import Foundation

/// The operator CLI for steprund: inspect runs, repair steps, check health.
@main
struct SteprunCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steprunctl",
        abstract: "Inspect and operate a steprund daemon.",
        discussion: """
            Tables by default, --json for scripts. Exit codes: 0 ok, 1 other error, 2 usage, 3 not found, \
            4 stale, 5 unavailable or deadline exceeded, 6 invalid argument. See docs/STEPRUNCTL.md.
            """,
        subcommands: [
            Health.self,
            Get.self, Statuses.self, Completed.self, Outputs.self, Compensation.self, Attempts.self,
            Begin.self, Schedule.self, Complete.self, Fail.self,
            PurgeRun.self,
        ])

    /// Runs the parsed command; every failure becomes one stderr line and a documented exit status.
    ///
    /// Replaces ArgumentParser's `main()` so that store errors map to their own exit codes and usage
    /// errors exit with 2 rather than ArgumentParser's 64 (EX_USAGE).
    static func main() async {
        do {
            var command = try await asyncParseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(reporting: error)
        }
    }

    private static func exit(reporting error: any Error) -> Never {
        if let report = FailureReport.line(for: error) {
            Console.error("steprunctl: \(report.line)")
            Foundation.exit(report.status.rawValue)
        }
        let code = exitCode(for: error)
        // Help goes to stdout with status 0; a bare ExitCode has already said what it had to say.
        if code.isSuccess || error is ExitCode { exit(withError: error) }
        let isUsage = code == .validationFailure
        Console.error("steprunctl: \(FailureReport.oneLine(message(for: error)))\(isUsage ? " (see --help)" : "")")
        Foundation.exit(isUsage ? ExitStatus.usage.rawValue : code.rawValue)
    }
}
