import ArgumentParser
import Foundation
import StepRunCore

/// Exit codes scripts can branch on (documented in docs/STEPRUNCTL.md).
enum ExitStatus {
    static let notFound: Int32 = 3
    static let stale: Int32 = 4
    static let unavailable: Int32 = 5
    static let invalidArgument: Int32 = 6
    static let other: Int32 = 1

    static func code(for error: StepRunError) -> Int32 {
        switch error.code {
        case .notFound: notFound
        case .failedPrecondition where error.reason != nil: stale
        case .unavailable, .deadlineExceeded, .unauthenticated: unavailable
        case .invalidArgument: invalidArgument
        default: other
        }
    }
}

/// Runs a command body, turning store errors into one stderr line and the matching exit code.
func runReporting(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as StepRunError {
        FileHandle.standardError.write(Data("steprunctl: \(error.code): \(error.message)\n".utf8))
        throw ExitCode(ExitStatus.code(for: error))
    }
}
