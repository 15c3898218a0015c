import ArgumentParser
import Foundation

/// `--json`: the one switch between tables for people and stable JSON for scripts.
struct OutputOptions: ParsableArguments {
    @Flag(help: "Print one JSON document instead of a table (shapes in docs/STEPRUNCTL.md).")
    var json = false

    /// Prints the result in the chosen form; the JSON is built only when asked for.
    func emit(table: @autoclosure () -> Table, json document: @autoclosure () -> JSONOutput) {
        if json {
            Console.output(document().rendered + "\n")
        } else {
            Console.output(table().rendered)
        }
    }
}

/// Writes to standard output and standard error.
///
/// Plain write(2) loops: unbuffered, so output and error lines keep their order, and nothing is
/// lost when the process exits with a status right after writing.
enum Console {
    static func output(_ text: String) {
        writeAll(text, to: STDOUT_FILENO)
    }

    /// One line on standard error.
    static func error(_ line: String) {
        writeAll(line.hasSuffix("\n") ? line : line + "\n", to: STDERR_FILENO)
    }

    private static func writeAll(_ text: String, to descriptor: Int32) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return  // a closed pipe (`| head`): the reader has what it wanted
            }
            bytes = bytes.dropFirst(written)
        }
    }
}
