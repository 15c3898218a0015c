import Foundation
import Logging
import StepRunCore
import StepRunPostgres
import StepRunTesting

/// A private Postgres cluster a test may stop and start, created with `scripts/pgtmp`.
struct ScratchPostgres {
    let directory: String
    let port: Int

    static let script: String = {
        // Tests/StepRunPostgresTests/TestDatabase.swift -> repository root
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/pgtmp").path
    }()

    static func create() async throws -> ScratchPostgres {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("steprun-scratch-\(UUID().uuidString.prefix(8))").path
        let port = Int(try await run(["freeport"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
        let scratch = ScratchPostgres(directory: directory, port: port)
        try await run(["init", directory])
        try await scratch.start()
        return scratch
    }

    var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }

    func start() async throws { try await Self.run(["start", directory, String(port)]) }
    func stop() async throws { try await Self.run(["stop", directory]) }
    func destroy() async { _ = try? await Self.run(["destroy", directory]) }

    /// Runs the script on a thread of its own: it blocks for seconds, which must not happen on the
    /// cooperative pool (with two cores, two blocked threads stall every other test).
    @discardableResult
    private static func run(_ arguments: [String]) async throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("pgtmp-\(UUID().uuidString)").path
        let command = ([script] + arguments).map { "'\($0)'" }.joined(separator: " ") + " > '\(output)' 2>&1"
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: system(command)) }.start()
        }
        defer { try? FileManager.default.removeItem(atPath: output) }
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw StepRunError.internal("scripts/pgtmp \(arguments.joined(separator: " ")) failed (\(status)): \(text)")
        }
        return text
    }
}
