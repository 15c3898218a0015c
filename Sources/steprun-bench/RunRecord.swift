import Foundation
import StepRunCore

/// One measured run: a scenario against one target. With `--json`, printed as one line of JSON.
struct RunRecord: Codable, Sendable {
    var scenario: String
    /// `daemon` or `postgres` (the direct libpq baseline).
    var target: String
    /// `unix` or `tcp` for the daemon; absent for the baseline.
    var transport: String?
    var clients: Int
    /// Client connections to the daemon, or Postgres connections for the baseline.
    var connections: Int
    var payloadBytes: Int
    var durationS: Double
    /// Store calls answered inside the measured window (a claim-complete cycle is two calls).
    var ops: Int
    var opsPerSec: Double
    var p50Us: UInt64
    var p90Us: UInt64
    var p99Us: UInt64
    var p999Us: UInt64
    var maxUs: UInt64
    var meanUs: Double
    /// Calls that failed or answered something the scenario did not expect.
    var errors: Int
    var errorCodes: [String: Int]
    var errorSamples: [String]
    /// The same figures per store operation.
    var operations: [String: OperationRecord]
    var daemonRssPeakKib: Int?
    var daemonRssMeanKib: Int?
    /// Where the CPU went during the window, in cores.
    var cpuCores: CPUUsage?
    /// The same, as CPU microseconds per store call.
    var cpuUsPerOp: CPUUsage?
    /// Context switches per store call, by process (threads that exited mid-run are missed).
    var contextSwitchesPerOp: ContextSwitchRates?

    struct OperationRecord: Codable, Sendable {
        var ops: UInt64
        var p50Us: UInt64
        var p99Us: UInt64
        var meanUs: Double
    }

    init(
        scenario: Scenario, target: String, transport: String?, clients: Int, connections: Int, payloadBytes: Int,
        measured: Duration, tally: WorkerTally, observation: SystemObservation
    ) {
        self.scenario = scenario.rawValue
        self.target = target
        self.transport = transport
        self.clients = clients
        self.connections = connections
        self.payloadBytes = payloadBytes
        let seconds = measured.inSeconds
        durationS = seconds
        ops = tally.ops
        opsPerSec = rounded(Double(tally.ops) / seconds, 1)
        let all = LatencySummary(tally.combined)
        p50Us = all.p50
        p90Us = all.p90
        p99Us = all.p99
        p999Us = all.p999
        maxUs = all.max
        meanUs = rounded(all.mean, 1)
        errors = tally.errors
        errorCodes = tally.errorsByCode
        errorSamples = tally.errorSamples
        operations = tally.latencies.mapValues { histogram in
            let summary = LatencySummary(histogram)
            return OperationRecord(ops: summary.count, p50Us: summary.p50, p99Us: summary.p99, meanUs: rounded(summary.mean, 1))
        }
        daemonRssPeakKib = observation.daemonRSSPeakKiB
        daemonRssMeanKib = observation.daemonRSSMeanKiB
        if let cpu = observation.cpu {
            cpuCores = cpu.scaled(by: 1, decimals: 3)
            if opsPerSec > 0 { cpuUsPerOp = cpu.scaled(by: 1e6 / opsPerSec, decimals: 1) }
        }
        if let switches = observation.contextSwitches, opsPerSec > 0 {
            let opsPerSec = self.opsPerSec
            let perOp = { (rate: Double?) in rate.map { rounded($0 / opsPerSec, 2) } }
            contextSwitchesPerOp = ContextSwitchRates(
                bench: perOp(switches.bench), daemon: perOp(switches.daemon), postgres: perOp(switches.postgres))
        }
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let data = try? encoder.encode(self) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// `daemon/unix` or `postgres`.
    var targetLabel: String {
        transport.map { "\(target)/\($0)" } ?? target
    }
}

/// Rounds for the JSON output: the figures are not precise beyond this, and the lines stay readable.
func rounded(_ value: Double, _ decimals: Int) -> Double {
    let scale = pow(10, Double(decimals))
    return (value * scale).rounded() / scale
}

extension CPUUsage {
    func scaled(by factor: Double, decimals: Int) -> CPUUsage {
        CPUUsage(
            bench: rounded(bench * factor, decimals), daemon: daemon.map { rounded($0 * factor, decimals) },
            postgres: postgres.map { rounded($0 * factor, decimals) }, interrupts: rounded(interrupts * factor, decimals),
            steal: rounded(steal * factor, decimals), other: rounded(other * factor, decimals), idle: rounded(idle * factor, decimals))
    }
}
