import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import ServiceLifecycle
import StepRunPostgres
import Synchronization

/// Serves `GET /metrics` in the Prometheus text format on its own HTTP listener.
struct MetricsEndpoint: Service {
    let host: String
    let port: Int
    let registry: PrometheusCollectorRegistry
    let pool: PostgresPool
    let logger: Logger

    func run() async throws {
        let scrape = Scrape(registry: registry, pool: pool)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(MetricsHTTPHandler(scrape: scrape))
                }
            }
            .bind(host: host, port: port).get()
        logger.info("serving metrics", metadata: ["url": "http://\(host):\(channel.localAddress?.port ?? port)/metrics"])
        try? await gracefulShutdown()
        try? await channel.close()
    }
}

/// Produces one exposition: pool gauges are read at scrape time so they are never stale.
final class Scrape: Sendable {
    let registry: PrometheusCollectorRegistry
    let pool: PostgresPool
    /// Pool totals already added to the counters (Prometheus counters only take increments).
    private let reported = Mutex(PoolTotals())

    private struct PoolTotals {
        var groupCommits = 0
        var groupCommittedCalls = 0
        var inlineReads = 0
        var inlineReadHandovers = 0
        var inlineWrites = 0
        var inlineWriteHandovers = 0
        var heldGroupHandovers = 0
        var cancelledStatements = 0

        init() {}

        init(_ statistics: PoolStatistics) {
            groupCommits = statistics.groupCommits
            groupCommittedCalls = statistics.groupCommittedCalls
            inlineReads = statistics.inlineReads
            inlineReadHandovers = statistics.inlineReadHandovers
            inlineWrites = statistics.inlineWrites
            inlineWriteHandovers = statistics.inlineWriteHandovers
            heldGroupHandovers = statistics.heldGroupHandovers
            cancelledStatements = statistics.cancelledStatements
        }
    }

    init(registry: PrometheusCollectorRegistry, pool: PostgresPool) {
        self.registry = registry
        self.pool = pool
    }

    private static func metric(_ name: String, unit: String = "", _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "steprund", metricName: name, unitName: unit, helpText: help)
    }

    private static var groupCommits: MetricNameDescriptor { metric("group_commits", unit: "total", "Transactions that committed several queued writes together.") }
    private static var groupCommittedCalls: MetricNameDescriptor { metric("group_committed_calls", unit: "total", "Writes answered through group commits.") }
    private static var inlineReads: MetricNameDescriptor { metric("inline_reads", unit: "total", "Reads run on the event loop because the pool was quiet.") }
    private static var inlineReadHandovers: MetricNameDescriptor { metric("inline_read_handovers", unit: "total", "Inline reads not answered within the inline wait, finished by a pool thread.") }
    private static var inlineWrites: MetricNameDescriptor {
        metric("inline_writes", unit: "total", "begin_step and complete_step calls run on the event loop because the pool was quiet.")
    }
    private static var inlineWriteHandovers: MetricNameDescriptor {
        metric("inline_write_handovers", unit: "total", "Inline writes not answered within the inline wait, finished by a pool thread.")
    }
    private static var heldGroupHandovers: MetricNameDescriptor {
        metric("held_group_handovers", unit: "total", "Groups started the moment a held group committed (group-commit-hold).")
    }
    private static var cancelledStatements: MetricNameDescriptor {
        metric("cancelled_statements", unit: "total", "Database statements cancelled because every caller waiting for them had passed its deadline.")
    }
    private static var poolConnections: MetricNameDescriptor { metric("pool_connections", "Pool connections by state (busy, idle).") }
    private static var poolConnected: MetricNameDescriptor { metric("pool_connected", "Pool connections currently open to Postgres.") }
    private static var poolSize: MetricNameDescriptor { metric("pool_size", "Configured number of pool connections.") }
    private static var poolWaitQueueDepth: MetricNameDescriptor { metric("pool_wait_queue_depth", "Calls waiting for a free pool connection.") }

    func render() -> [UInt8] {
        let statistics = pool.statistics
        let before = reported.withLock { reported in
            defer { reported = PoolTotals(statistics) }
            return reported
        }
        registry.makeCounter(descriptor: Self.groupCommits).increment(by: Int64(statistics.groupCommits - before.groupCommits))
        registry.makeCounter(descriptor: Self.groupCommittedCalls).increment(by: Int64(statistics.groupCommittedCalls - before.groupCommittedCalls))
        registry.makeCounter(descriptor: Self.inlineReads).increment(by: Int64(statistics.inlineReads - before.inlineReads))
        registry.makeCounter(descriptor: Self.inlineReadHandovers).increment(by: Int64(statistics.inlineReadHandovers - before.inlineReadHandovers))
        registry.makeCounter(descriptor: Self.inlineWrites).increment(by: Int64(statistics.inlineWrites - before.inlineWrites))
        registry.makeCounter(descriptor: Self.inlineWriteHandovers).increment(by: Int64(statistics.inlineWriteHandovers - before.inlineWriteHandovers))
        registry.makeCounter(descriptor: Self.heldGroupHandovers).increment(by: Int64(statistics.heldGroupHandovers - before.heldGroupHandovers))
        registry.makeCounter(descriptor: Self.cancelledStatements).increment(by: Int64(statistics.cancelledStatements - before.cancelledStatements))
        registry.makeGauge(descriptor: Self.poolConnections, labels: [("state", "busy")]).set(Double(statistics.busy))
        registry.makeGauge(descriptor: Self.poolConnections, labels: [("state", "idle")]).set(Double(statistics.idle))
        registry.makeGauge(descriptor: Self.poolConnected).set(Double(statistics.connected))
        registry.makeGauge(descriptor: Self.poolSize).set(Double(statistics.size))
        registry.makeGauge(descriptor: Self.poolWaitQueueDepth).set(Double(statistics.waiting))
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return buffer
    }
}

final class MetricsHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let scrape: Scrape
    private var head: HTTPRequestHead?

    init(scrape: Scrape) {
        self.scrape = scrape
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body:
            break
        case .end:
            guard let head else { return }
            let path = head.uri.split(separator: "?").first.map(String.init) ?? head.uri
            let (status, body, type): (HTTPResponseStatus, [UInt8], String) =
                head.method == .GET && path == "/metrics"
                ? (.ok, scrape.render(), "text/plain; version=0.0.4; charset=utf-8")
                : (.notFound, Array("not found; metrics are at /metrics\n".utf8), "text/plain; charset=utf-8")
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: String(body.count))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
            let keepAlive = head.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
                if !keepAlive { context.close(promise: nil) }
            }
            self.head = nil
        }
    }
}
