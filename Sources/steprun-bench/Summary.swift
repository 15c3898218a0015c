import Foundation

/// The human-readable output: a line per run as it finishes, then daemon-vs-baseline tables.
enum Summary {
    static func line(_ record: RunRecord) -> String {
        var text = "\(pad(record.scenario, 15)) \(pad(record.targetLabel, 11)) clients \(pad(record.clients, 3, right: true))"
        text += " conns \(pad(record.connections, 3, right: true)) payload \(pad(bytes(record.payloadBytes), 7, right: true))"
        text += "  \(pad(format(record.opsPerSec, 1), 9, right: true)) ops/s  p50 \(pad(micros(record.p50Us), 8, right: true))"
        text += "  p99 \(pad(micros(record.p99Us), 8, right: true))  errors \(record.errors)"
        if let rss = record.daemonRssPeakKib { text += "  rss \(format(Double(rss) / 1024, 1)) MiB" }
        if let cpu = record.cpuCores {
            text += "  cores: bench \(format(cpu.bench, 2))"
            if let daemon = cpu.daemon { text += " daemon \(format(daemon, 2))" }
            if let postgres = cpu.postgres { text += " pg \(format(postgres, 2))" }
            text += " irq \(format(cpu.interrupts, 2)) steal \(format(cpu.steal, 2)) other \(format(cpu.other, 2)) idle \(format(cpu.idle, 2))"
        }
        for sample in record.errorSamples.prefix(2) {
            text += "\n    error: \(sample.prefix(300))"
        }
        return text
    }

    /// Pairs each daemon run with the baseline run of the same scenario, clients and payload.
    static func comparison(_ records: [RunRecord]) -> String {
        let baselines = Dictionary(
            records.filter { $0.target == "postgres" }.map { (key($0), $0) }, uniquingKeysWith: { _, last in last })
        var lines = [
            "daemon vs direct Postgres (ratio = daemon / direct; > 1 is better for ops/s, worse for latency)",
            [
                pad("scenario", 15), pad("payload", 7, right: true), pad("clients", 7, right: true), pad("transport", 9),
                pad("conns", 5, right: true), pad("direct ops/s", 12, right: true), pad("daemon ops/s", 12, right: true),
                pad("ops/s ×", 7, right: true), pad("p50 d/p µs", 17, right: true), pad("p50 ×", 6, right: true),
                pad("p99 d/p µs", 17, right: true), pad("p99 ×", 6, right: true), pad("errors d/p", 10, right: true),
                pad("rss MiB", 7, right: true),
            ].joined(separator: " "),
        ]
        for record in records where record.target == "daemon" {
            guard let base = baselines[key(record)] else { continue }
            lines.append([
                pad(record.scenario, 15), pad(bytes(record.payloadBytes), 7, right: true), pad(record.clients, 7, right: true),
                pad(record.transport ?? "", 9), pad(record.connections, 5, right: true),
                pad(format(base.opsPerSec, 0), 12, right: true), pad(format(record.opsPerSec, 0), 12, right: true),
                pad(ratio(record.opsPerSec, base.opsPerSec), 7, right: true),
                pad("\(record.p50Us)/\(base.p50Us)", 17, right: true),
                pad(ratio(Double(record.p50Us), Double(base.p50Us)), 6, right: true),
                pad("\(record.p99Us)/\(base.p99Us)", 17, right: true),
                pad(ratio(Double(record.p99Us), Double(base.p99Us)), 6, right: true),
                pad("\(record.errors)/\(base.errors)", 10, right: true),
                pad(record.daemonRssPeakKib.map { format(Double($0) / 1024, 1) } ?? "-", 7, right: true),
            ].joined(separator: " "))
        }
        return lines.count > 2 ? lines.joined(separator: "\n") : ""
    }

    /// CPU microseconds per store call, by process, for every run that has them.
    static func cpuTable(_ records: [RunRecord]) -> String {
        let measured = records.filter { $0.cpuUsPerOp != nil }
        guard !measured.isEmpty else { return "" }
        var lines = [
            "CPU µs per call (irq = interrupts and softirq, mostly loopback networking; steal = taken by the hypervisor for other guests; other = anything else on the machine)",
            [
                pad("scenario", 15), pad("payload", 7, right: true), pad("clients", 7, right: true), pad("target", 11),
                pad("bench", 8, right: true), pad("daemon", 8, right: true), pad("postgres", 8, right: true),
                pad("irq", 8, right: true), pad("steal", 8, right: true), pad("other", 8, right: true), pad("idle", 8, right: true),
                pad("| switches/call: bench", 22, right: true), pad("daemon", 7, right: true), pad("pg", 5, right: true),
            ].joined(separator: " "),
        ]
        for record in measured {
            guard let cpu = record.cpuUsPerOp else { continue }
            lines.append([
                pad(record.scenario, 15), pad(bytes(record.payloadBytes), 7, right: true), pad(record.clients, 7, right: true),
                pad(record.targetLabel, 11), pad(format(cpu.bench, 0), 8, right: true),
                pad(cpu.daemon.map { format($0, 0) } ?? "-", 8, right: true),
                pad(cpu.postgres.map { format($0, 0) } ?? "-", 8, right: true), pad(format(cpu.interrupts, 0), 8, right: true),
                pad(format(cpu.steal, 0), 8, right: true), pad(format(cpu.other, 0), 8, right: true),
                pad(format(cpu.idle, 0), 8, right: true),
                pad(record.contextSwitchesPerOp?.bench.map { format($0, 1) } ?? "-", 22, right: true),
                pad(record.contextSwitchesPerOp?.daemon.map { format($0, 1) } ?? "-", 7, right: true),
                pad(record.contextSwitchesPerOp?.postgres.map { format($0, 1) } ?? "-", 5, right: true),
            ].joined(separator: " "))
        }
        return lines.joined(separator: "\n")
    }

    private static func key(_ record: RunRecord) -> String {
        "\(record.scenario)|\(record.clients)|\(record.payloadBytes)"
    }

    private static func ratio(_ value: Double, _ base: Double) -> String {
        base > 0 ? format(value / base, 2) : "-"
    }

    static func format(_ value: Double, _ decimals: Int) -> String {
        String(format: "%.\(decimals)f", value)
    }

    static func micros(_ value: UInt64) -> String {
        value >= 10_000 ? "\(format(Double(value) / 1000, 1))ms" : "\(value)µs"
    }

    static func bytes(_ count: Int) -> String {
        if count >= 1 << 20, count % (1 << 20) == 0 { return "\(count >> 20)MiB" }
        if count >= 1 << 10, count % (1 << 10) == 0 { return "\(count >> 10)KiB" }
        return "\(count)B"
    }

    private static func pad(_ value: some CustomStringConvertible, _ width: Int, right: Bool = false) -> String {
        let text = value.description
        let count = text.count
        guard count < width else { return text }
        let fill = String(repeating: " ", count: width - count)
        return right ? fill + text : text + fill
    }
}
