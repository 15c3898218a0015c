import Foundation
import StepRunCore

/// A JSON payload given on the command line: the JSON text itself, `@PATH` to read it from a file,
/// or `@-` to read it from standard input. (A JSON object never starts with `@`.)
///
/// The text is checked with the store's own validator before anything is sent, so a payload that
/// is not a JSON object fails with exit status 6 exactly as the daemon's INVALID_ARGUMENT would.
enum PayloadArgument {
    static func payload(_ argument: String, field: String) throws -> JSONPayload {
        try JSONPayload(validating: try text(of: argument, field: field), field: field)
    }

    static func payload(_ argument: String?, field: String) throws -> JSONPayload? {
        try argument.map { try payload($0, field: field) }
    }

    /// Rejects reading more than one payload from standard input in a single command.
    static func checkOneStandardInput(_ arguments: [String?]) throws {
        if arguments.filter({ $0 == "@-" }).count > 1 {
            throw CtlError(.usage, "only one payload can be read from standard input (@-)")
        }
    }

    private static func text(of argument: String, field: String) throws -> String {
        guard argument.hasPrefix("@") else { return argument }
        let path = String(argument.dropFirst())
        let data: Data
        if path == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw CtlError(.invalidArgument, "\(field): cannot read \(path): \(error.localizedDescription)")
            }
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw StepRunError.invalidArgument(field: field, message: "\(field) must be UTF-8 JSON text")
        }
        return text
    }
}
