import ArgumentParser
import Foundation
import StepRunClient

/// One target of a run: the direct baseline, or the daemon over one transport.
enum RunTarget: Sendable {
    case postgres
    case daemon(transport: String, StepRunClient.Target)

    var isDaemon: Bool {
        if case .daemon = self { return true }
        return false
    }

    var name: String { isDaemon ? "daemon" : "postgres" }

    var transport: String? {
        if case .daemon(let transport, _) = self { return transport }
        return nil
    }
}

/// The parsed and checked options: which runs to make, in which order.
struct Plan: Sendable {
    var scenarios: [Scenario]
    var runTargets: [RunTarget]
    var clientCounts: [Int]
    var payloads: [Int]
    var timing: Timing
    var header: String
}

extension BenchCommand {
    func plan() throws -> Plan {
        let scenarios: [Scenario] = try list(scenario).flatMap { name -> [Scenario] in
            if name == "all" { return Scenario.allCases }
            guard let scenario = Scenario(rawValue: name) else {
                throw ValidationError("unknown scenario \(name); expected \(Scenario.allCases.map(\.rawValue).joined(separator: ", ")) or all")
            }
            return [scenario]
        }
        let clientCounts = try list(clients).map { text -> Int in
            guard let count = Int(text), (1...4096).contains(count) else { throw ValidationError("--clients must be 1…4096, got \(text)") }
            return count
        }
        let payloads = try list(payloadBytes).map { text -> Int in
            guard let bytes = Self.parseBytes(text), bytes >= PayloadSet.minimumBytes else {
                throw ValidationError("--payload-bytes must be at least \(PayloadSet.minimumBytes) (e.g. 100, 10KiB, 1MiB), got \(text)")
            }
            return bytes
        }
        guard duration > 0, warmup >= 0, pause >= 0, timeout > 0 else {
            throw ValidationError("--duration and --timeout must be positive, --warmup and --pause not negative")
        }
        if let connections, connections < 1 { throw ValidationError("--connections must be at least 1") }
        guard deliveries >= 1, fanOutWidth >= 1, readRuns >= 1, readSteps >= 1 else {
            throw ValidationError("--deliveries, --fan-out-width, --read-runs and --read-steps must be at least 1")
        }

        var runTargets: [RunTarget] = []
        for name in try list(target) {
            switch name {
            case "postgres", "direct":
                guard databaseURL != nil else { throw ValidationError("--target postgres needs --database-url") }
                runTargets.append(.postgres)
            case "daemon":
                for transportName in try list(transport) {
                    runTargets.append(.daemon(transport: transportName, try clientTarget(transportName)))
                }
            default:
                throw ValidationError("unknown target \(name); expected postgres or daemon")
            }
        }
        if scenarios.contains(.read), databaseURL == nil, !runTargets.contains(where: \.isDaemon) {
            throw ValidationError("the read scenario needs --database-url or a daemon target to prepare its data")
        }

        let seconds = { (value: Double) in Duration.milliseconds(Int64(value * 1000)) }
        let header = """
            steprun-bench: \(scenarios.map(\.rawValue).joined(separator: ",")) | targets \(runTargets.map { $0.transport.map { "daemon/\($0)" } ?? "postgres" }.joined(separator: ",")) \
            | clients \(clientCounts.map(String.init).joined(separator: ",")) | payload \(payloads.map(Summary.bytes).joined(separator: ",")) \
            | \(Summary.format(warmup, 1)) s warm-up + \(Summary.format(duration, 1)) s per run | client tasks on \(clientTasks.rawValue) \
            | \(ProcessInfo.processInfo.activeProcessorCount) CPUs
            """
        return Plan(
            scenarios: scenarios, runTargets: runTargets, clientCounts: clientCounts, payloads: payloads,
            timing: Timing(warmup: seconds(warmup), duration: seconds(duration), callTimeout: seconds(timeout)), header: header)
    }

    private func clientTarget(_ transport: String) throws -> StepRunClient.Target {
        switch transport {
        case "unix":
            guard let unixSocket else { throw ValidationError("--transport unix needs --unix-socket PATH") }
            return .unix(path: unixSocket)
        case "tcp":
            guard let tcp, let colon = tcp.lastIndex(of: ":"), let port = Int(tcp[tcp.index(after: colon)...]) else {
                throw ValidationError("--transport tcp needs --tcp HOST:PORT")
            }
            var token: String?
            if let tokenFile {
                guard let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else {
                    throw ValidationError("cannot read --token-file \(tokenFile)")
                }
                token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
            return .tcp(host: String(tcp[..<colon]), port: port, token: token)
        default:
            throw ValidationError("unknown transport \(transport); expected unix or tcp")
        }
    }

    private func list(_ text: String) throws -> [String] {
        let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
        guard !items.isEmpty else { throw ValidationError("empty list: \(text)") }
        return items
    }

    /// `100`, `10k`, `10kib`, `1m`, `1mib` (lower-cased already); binary multiples.
    static func parseBytes(_ text: String) -> Int? {
        let units: [(String, Int)] = [("kib", 1 << 10), ("mib", 1 << 20), ("kb", 1 << 10), ("mb", 1 << 20), ("k", 1 << 10), ("m", 1 << 20), ("b", 1)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            return Int(text.dropLast(suffix.count)).map { $0 * scale }
        }
        return Int(text)
    }
}
