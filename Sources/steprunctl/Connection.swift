import ArgumentParser
import Foundation
import StepRunClient
import StepRunCore

/// How to reach steprund; the same flags and environment variables as the daemon's.
struct ConnectionOptions: ParsableArguments {
    @Option(name: .customLong("unix-socket"), help: "steprund's Unix socket (env STEPRUN_UNIX_SOCKET; default /run/steprund/steprund.sock).")
    var unixSocket: String?

    @Option(help: "Connect over TCP to HOST:PORT instead (env STEPRUN_TCP).")
    var tcp: String?

    @Option(name: .customLong("token-file"), help: "File holding the TCP token (env STEPRUN_TOKEN_FILE).")
    var tokenFile: String?

    @Option(help: "Give up after this long, e.g. 5s or 500ms (default 10s).")
    var timeout: String = "10s"

    @Flag(help: "Print JSON instead of tables.")
    var json = false

    func makeClient() throws -> StepRunClient {
        let environment = ProcessInfo.processInfo.environment
        let configuration = StepRunClient.Configuration(clientName: "steprunctl", defaultTimeout: try parsedTimeout(), connectTimeout: try parsedTimeout())
        if let address = tcp ?? environment["STEPRUN_TCP"], !address.isEmpty {
            guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
                throw ValidationError("--tcp must be HOST:PORT, got \"\(address)\"")
            }
            var host = String(address[..<colon])
            if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            var token: String?
            if let path = tokenFile ?? environment["STEPRUN_TOKEN_FILE"], !path.isEmpty {
                guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
                    throw ValidationError("cannot read the token file \(path)")
                }
                token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return StepRunClient(target: .tcp(host: host.isEmpty ? "127.0.0.1" : host, port: port, token: token), configuration: configuration)
        }
        let path = unixSocket ?? environment["STEPRUN_UNIX_SOCKET"].flatMap { $0.isEmpty ? nil : $0 } ?? "/run/steprund/steprund.sock"
        return StepRunClient(target: .unix(path: path), configuration: configuration)
    }

    func parsedTimeout() throws -> Duration {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
        for (suffix, scale) in units where timeout.hasSuffix(suffix) {
            if let number = Double(timeout.dropLast(suffix.count)), number > 0 { return .milliseconds(Int64(number * scale * 1000)) }
        }
        if let seconds = Double(timeout), seconds > 0 { return .milliseconds(Int64(seconds * 1000)) }
        throw ValidationError("--timeout must be a duration such as 5s or 500ms, got \"\(timeout)\"")
    }
}

/// Parses a UUID argument.
func uuid(_ text: String, _ name: String) throws -> UUID {
    guard let value = UUID(uuidString: text) else { throw ValidationError("\(name) must be a UUID, got \"\(text)\"") }
    return value
}

/// Parses a JSON-object argument, refusing anything else the way the daemon would.
func payload(_ text: String?, _ name: String) throws -> JSONPayload? {
    guard let text else { return nil }
    do {
        return try JSONPayload(validating: text, field: name)
    } catch {
        throw error
    }
}
