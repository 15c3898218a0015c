import ArgumentParser
import StepRunClient

/// `health`: is steprund up, and can it reach its database?
struct Health: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that steprund is serving and can reach its database.",
        discussion: "Exits 0 when serving, 5 when the daemon is unreachable or reports its database unreachable.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        let serving = try await connection.withClient { client in
            let hello = try await client.connect()
            let health = try await client.health(timeout: connection.timeout.duration)
            let latency: Int64? = health.databaseLatencyMicros >= 0 ? health.databaseLatencyMicros : nil
            output.emit(
                table: Table(fields: [
                    ("status", health.serving ? "serving" : "not serving"),
                    ("message", health.message),
                    ("database_latency", latency.map(Self.milliseconds) ?? Cell.absent),
                    ("target", client.target.description),
                    ("server", hello.serverName),
                    ("protocol_version", String(hello.protocolVersion)),
                    ("max_frame_bytes", String(hello.maxFrameBytes)),
                    ("max_payload_bytes", String(hello.maxPayloadBytes)),
                    ("max_in_flight", String(hello.maxInFlight)),
                ]),
                json: .object([
                    ("serving", .bool(health.serving)),
                    ("message", .string(health.message)),
                    ("database_latency_us", latency.map { .int($0) } ?? .null),
                    ("target", .string(client.target.description)),
                    ("server", .string(hello.serverName)),
                    ("protocol_version", .int(Int64(hello.protocolVersion))),
                    ("max_frame_bytes", .int(Int64(hello.maxFrameBytes))),
                    ("max_payload_bytes", .int(Int64(hello.maxPayloadBytes))),
                    ("max_in_flight", .int(Int64(hello.maxInFlight))),
                ]))
            if !health.serving {
                Console.error("steprunctl: steprund is not serving: \(FailureReport.oneLine(health.message))")
            }
            return health.serving
        }
        if !serving { throw ExitStatus.unavailable.exitCode }
    }

    /// `1234` µs as `1.234 ms`.
    private static func milliseconds(_ micros: Int64) -> String {
        let fraction = String(micros % 1000)
        return "\(micros / 1000).\(String(repeating: "0", count: 3 - fraction.count))\(fraction) ms"
    }
}
