import ArgumentParser
import CMalloc
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import StepRunCore
import StepRunPostgres
import StepRunServer
import StepRunWire

@main
struct Steprund: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "steprund",
        abstract: "Durable step-state service for workflow engines.",
        version: StepRunServer.version,
        subcommands: [Serve.self, Migrate.self],
        defaultSubcommand: Serve.self)
}

/// Sets up swift-log once: structured lines on standard error (journald keeps them).
func makeLogger(_ level: Logger.Level) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    var logger = Logger(label: "steprund")
    logger.logLevel = level
    return logger
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply migrations, then serve requests (the default).")

    @OptionGroup var options: DaemonOptions

    func run() async throws {
        let settings = try options.settings()
        let logger = makeLogger(settings.logLevel)
        for line in settings.deprecations { logger.warning("\(line)") }
        let stop = await StopSignals.trap(logger: logger)
        MemoryTuning.returnLargeBuffersToTheSystem()
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        var serverConfiguration = try settings.serverConfiguration()
        let inherited = try Systemd.inheritedSockets()
        if !inherited.isEmpty {
            serverConfiguration.inheritedUnixSocket = inherited.unix
            serverConfiguration.inheritedTCPSocket = inherited.tcp
            if inherited.tcp != nil, serverConfiguration.tcpToken == nil, let tokenFile = settings.tokenFile {
                serverConfiguration.tcpToken = try Settings.readToken(tokenFile)
            }
            logger.info("using sockets from the service manager", metadata: [
                "unix": "\(inherited.unix.map(String.init) ?? "none")", "tcp": "\(inherited.tcp.map(String.init) ?? "none")",
            ])
        }
        // Everything that can be refused is refused before the embedded cluster starts, so a bad
        // setting never leaves a Postgres running.
        let embedded = settings.usesEmbeddedDatabase ? EmbeddedPostgres(directory: settings.dataDirectory, logger: logger) : nil
        let postgres = try settings.postgresConfiguration(embedded: embedded?.connectionString)
        try serverConfiguration.validate()

        // From the cluster's start to the group's run, every way out (an error, a stop signal) goes
        // through the one cleanup below; once the group runs, its services stop the pool and cluster.
        var stopsEmbedded = false
        var pool: PostgresPool?
        let group: ServiceGroup
        do {
            if let embedded {
                logger.notice("no database configured: using the embedded development database (not for production)", metadata: ["dir": "\(settings.dataDirectory)"])
                // A start that throws may still have brought the server up (pg_ctl killed by a signal to
                // the whole process group after the server came up), so it is stopped then too.
                stopsEmbedded = true
                stopsEmbedded = try await embedded.start()
                guard stop.received == nil else { throw StoppedDuringStartUp() }
            }
            Systemd.notify("STATUS=applying database migrations")
            let opened = PostgresPool(configuration: postgres, logger: logger)
            pool = opened
            try await migrateWhenReachable(pool: opened, logger: logger, stop: stop)
            guard stop.received == nil else { throw StoppedDuringStartUp() }
            group = makeServiceGroup(
                settings: settings, serverConfiguration: serverConfiguration, pool: opened, registry: registry,
                embedded: embedded.map { ($0, stopsEmbedded) }, logger: logger)
        } catch {
            await pool?.shutdown()
            if stopsEmbedded { await embedded?.stop() }
            if let signal = stop.received {
                logger.notice("stopped by \(signal) during start-up")
                return
            }
            throw error
        }
        stop.forward(to: group)
        try await group.run()
    }

    /// The services in start order; they stop in reverse: the server drains first, then the pool closes, then the cluster.
    private func makeServiceGroup(
        settings: Settings, serverConfiguration: ServerConfiguration, pool: PostgresPool,
        registry: PrometheusCollectorRegistry, embedded: (EmbeddedPostgres, startedHere: Bool)?, logger: Logger
    ) -> ServiceGroup {
        let repository = StepRunRepository(pool: pool, limits: serverConfiguration.storeLimitsWithResponseBudget)
        let server = StepRunServer(
            configuration: serverConfiguration, store: repository,
            health: { deadline in await .probing { try await repository.checkHealth(deadline: deadline) } },
            logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let (postgres, startedHere) = embedded {
            services.append(.init(service: EmbeddedPostgresService(postgres: postgres, startedHere: startedHere)))
        }
        services += [
            .init(service: pool),
            .init(service: server),
        ]
        if let metrics = settings.metrics {
            services.append(.init(service: MetricsEndpoint(host: metrics.host, port: metrics.port, registry: registry, pool: pool, logger: logger)))
        }
        services.append(.init(service: SystemdNotifyService(server: server, logger: logger)))
        return ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                // `stop` turns SIGTERM, SIGINT and SIGHUP into a graceful shutdown of the group.
                gracefulShutdownSignals: [],
                logger: logger))
    }

    /// Start-up should survive a database that is still booting: retry for a while, then give up.
    /// A stop signal ends the waiting (the caller then sees `stop.received`).
    private func migrateWhenReachable(pool: PostgresPool, logger: Logger, stop: StopSignals) async throws {
        let giveUp = ContinuousClock.now.advanced(by: .seconds(60))
        var delay = Duration.milliseconds(250)
        while stop.received == nil {
            do {
                try await SchemaMigrator.migrate(pool: pool, logger: logger)
                return
            } catch let error as StepRunError where error.code == .unavailable && ContinuousClock.now < giveUp {
                logger.warning("database not reachable yet; retrying", metadata: ["error": "\(error.message)"])
                try await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(5))
            }
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending schema migrations and exit.")

    @OptionGroup var options: DaemonOptions

    func run() async throws {
        let settings = try options.settings()
        let logger = makeLogger(settings.logLevel)
        for line in settings.deprecations { logger.warning("\(line)") }
        let pool = PostgresPool(configuration: try settings.postgresConfiguration(), logger: logger)
        let report = try await SchemaMigrator.migrate(pool: pool, logger: logger)
        print(report.from == report.to
            ? "schema \(settings.schema) is up to date at version \(report.to)"
            : "schema \(settings.schema) migrated from version \(report.from) to \(report.to)")
        await pool.shutdown()
    }
}

/// Thrown inside start-up when a stop signal arrived, to take the one cleanup path.
private struct StoppedDuringStartUp: Error {}

/// glibc's allocator raises its mmap threshold each time a large block is freed (up to 32 MiB), so
/// after a burst of 1 MiB payloads their buffers come from the heap and stay resident: RSS was
/// 340 MiB long after a 1 MiB-payload benchmark. A fixed threshold keeps every buffer of 256 KiB or
/// more in its own mapping, returned to the system when freed.
enum MemoryTuning {
    static func returnLargeBuffersToTheSystem() {
        _ = mallopt(M_MMAP_THRESHOLD, 256 * 1024)
        _ = mallopt(M_TRIM_THRESHOLD, 1024 * 1024)
    }
}
