import Foundation
import StepRunClient
import StepRunCore
import Testing
import StepRunTesting

@Suite("Metrics and health")
struct ObservabilityTests {
    @Test("the metrics endpoint exposes requests by operation and code, latency, pool and in-flight gauges")
    func metricsEndpoint() async throws {
        let socketPath = temporaryPath("metrics") + ".sock"
        let port = freePort()
        let daemon = try DaemonProcess([
            Binaries.steprund, "serve", "--database-url", try testDatabaseURL(), "--unix-socket", socketPath,
            "--metrics", "127.0.0.1:\(port)", "--log-level", "warning",
        ])
        #expect(await eventually { unixSocketAccepts(socketPath) }, "daemon output: \(daemon.output)")
        let client = StepRunClient(target: .unix(path: socketPath))
        let runID = UUID()
        let (stepRun, _) = try await client.beginStep(runID: runID, step: "measured")
        try await client.completeStep(stepRunID: stepRun.id, output: [:])
        _ = try? await client.completeStep(stepRunID: stepRun.id, output: [:])
        #expect(try await client.health().serving)

        // The readiness probe above opened a connection of its own; the daemon may not have seen
        // it close yet, so scrape until only the client's connection is counted.
        var scraped: String?
        #expect(await eventually {
            scraped = await httpGet(port: port, path: "/metrics")
            let line = scraped?.split(separator: "\n").first { $0.hasPrefix("steprund_connections ") }
            return line.flatMap { Double($0.dropFirst("steprund_connections ".count)) } == 1
        }, "\(scraped ?? "no answer")")
        let body = try #require(scraped)
        #expect(body.hasPrefix("HTTP/1.1 200") || body.hasPrefix("HTTP/1.0 200"))
        #expect(body.contains(#"steprund_requests_total{operation="begin_step",code="OK"} 1"#), "\(body)")
        #expect(body.contains(#"steprund_requests_total{operation="complete_step",code="FAILED_PRECONDITION"} 1"#))
        #expect(body.contains("steprund_request_duration_seconds_bucket"))
        #expect(body.contains(#"steprund_pool_connections{state="busy"}"#))
        #expect(body.contains("steprund_pool_wait_queue_depth 0"))
        #expect(body.contains("steprund_requests_in_flight"))
        #expect(body.contains("steprund_group_commits_total"))
        #expect(body.contains("steprund_inline_reads_total"))
        #expect(body.contains("steprund_inline_read_handovers_total"))
        #expect(body.contains("steprund_inline_writes_total"))
        #expect(body.contains("steprund_inline_write_handovers_total"))
        #expect(body.contains("steprund_held_group_handovers_total"))
        #expect(body.contains("steprund_cancelled_statements_total"))
        let missing = await httpGet(port: port, path: "/other")
        #expect(missing?.contains(" 404 ") == true)
        await client.close()
        #expect(await daemon.terminate() == 0)
    }
}
