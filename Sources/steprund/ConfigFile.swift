import Foundation

/// A pgbouncer-style config file: `key = value` lines, `#` or `;` comments, blank lines ignored.
/// Keys are the long flag names (`database-url`, `max-in-flight`, …); `_` is accepted for `-`.
struct ConfigFile {
    private(set) var values: [String: String] = [:]

    init() {}

    init(path: String) throws {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw DaemonError("cannot read config file \(path): \(error.localizedDescription)")
        }
        for (number, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") || line.hasPrefix("[") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw DaemonError("\(path):\(number + 1): expected `key = value`")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "-").lowercased()
            var value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            guard Settings.knownKeys.contains(key) else {
                throw DaemonError("\(path):\(number + 1): unknown setting `\(key)`")
            }
            values[key] = value
        }
    }

    subscript(key: String) -> String? { values[key] }
}

/// A start-up failure with a message for the operator.
struct DaemonError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
