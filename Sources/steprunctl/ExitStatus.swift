import ArgumentParser
import Foundation
import StepRunCore

/// steprunctl's exit codes: the contract scripts branch on (documented in docs/STEPRUNCTL.md).
enum ExitStatus: Int32 {
    case ok = 0
    /// Anything not listed below (internal, unauthenticated, already exists, …).
    case failure = 1
    /// The command line did not parse: unknown command or flag, missing or malformed argument.
    case usage = 2
    /// The step run or attempt does not exist (also `get` of a step the run never recorded).
    case notFound = 3
    /// FAILED_PRECONDITION `stale_step_run` / `stale_attempt`: the row is no longer in the status the change needs.
    case stale = 4
    /// steprund or its database is unreachable, or the call's deadline passed; safe to retry reads.
    case unavailable = 5
    /// A value was rejected: a payload that is not a JSON object, a step name that is too long, …
    case invalidArgument = 6

    /// The exit status for a store error.
    init(for error: StepRunError) {
        switch error {
        case .notFound: self = .notFound
        case .staleStepRun, .staleAttempt: self = .stale
        case .unavailable, .deadlineExceeded: self = .unavailable
        case .invalidArgument: self = .invalidArgument
        case .transactionFailed(_, let cause): self = ExitStatus(for: cause)
        default: self = .failure
        }
    }

    var exitCode: ExitCode { ExitCode(rawValue) }
}

/// A failure detected by steprunctl itself (not answered by steprund), with its exit status.
struct CtlError: Error, CustomStringConvertible {
    var status: ExitStatus
    var message: String

    init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }

    var description: String { message }
}

/// Turns any error that ends the program into one line on standard error and an exit status.
enum FailureReport {
    /// The line printed for a store or steprunctl error (without the program-name prefix) and its
    /// exit status; nil for anything else, such as ArgumentParser's usage errors and help requests.
    static func line(for error: any Error) -> (line: String, status: ExitStatus)? {
        switch error {
        case let error as StepRunError:
            return ("\(error.code): \(oneLine(error.message))", ExitStatus(for: error))
        case let error as CtlError:
            return (oneLine(error.message), error.status)
        default:
            return nil
        }
    }

    /// Collapses line breaks so that every error stays on a single line of the log or terminal.
    static func oneLine(_ text: String) -> String {
        text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}
