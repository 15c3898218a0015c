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
        var embedded: EmbeddedPostgres?
        var embeddedStartedHere = false
        if settings.usesEmbeddedDatabase {
            let cluster = EmbeddedPostgres(directory: settings.dataDirectory, logger: logger)
            logger.notice("no database configured: using the embedded development database (not for production)", metadata: ["dir": "\(settings.dataDirectory)"])
            do {
                embeddedStartedHere = try await cluster.start()
            } catch {
                // `start` found the cluster stopped before it threw; pg_ctl may have been killed
                // (a signal to the whole process group) after the server came up, so stop it.
                await cluster.stop()
                if let signal = stop.received {
                    logger.notice("stopped by \(signal) during start-up")
                    return
                }
                throw error
            }
            embedded = cluster
            if let signal = stop.received {
                logger.notice("stopped by \(signal) during start-up")
                if embeddedStartedHere { await cluster.stop() }
                return
            }
        }
        let postgres = try settings.postgresConfiguration(embedded: embedded?.connectionString)
        try serverConfiguration.validate()
        Systemd.notify("STATUS=applying database migrations")

        let pool = PostgresPool(configuration: postgres, logger: logger)
        do {
            try await migrateWhenReachable(pool: pool, logger: logger, stop: stop)
        } catch {
            await pool.shutdown()
            if embeddedStartedHere { await embedded?.stop() }
            throw error
        }
        if let signal = stop.received {
            logger.notice("stopped by \(signal) during start-up")
            await pool.shutdown()
            if embeddedStartedHere { await embedded?.stop() }
            return
        }
        let repository = StepRunRepository(pool: pool, limits: serverConfiguration.storeLimitsWithResponseBudget)
        let server = StepRunServer(
            configuration: serverConfiguration, store: repository,
            health: { deadline in await .probing { try await repository.checkHealth(deadline: deadline) } },
            logger: logger)

        // Services stop in reverse order: the server drains first, then the pool closes.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let embedded {
            services.append(.init(service: EmbeddedPostgresService(postgres: embedded, startedHere: embeddedStartedHere)))
        }
        services += [
            .init(service: PoolService(pool: pool)),
            .init(service: server),
        ]
        if let metrics = settings.metrics {
            services.append(.init(service: MetricsEndpoint(host: metrics.host, port: metrics.port, registry: registry, pool: pool, logger: logger)))
        }
        services.append(.init(service: SystemdNotifyService(server: server, logger: logger)))
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: services,
                // `stop` turns SIGTERM, SIGINT and SIGHUP into a graceful shutdown of the group.
                gracefulShutdownSignals: [],
                logger: logger))
        stop.forward(to: group)
        try await group.run()
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
        let pool = PostgresPool(configuration: try settings.postgresConfiguration(), logger: logger)
        let report = try await SchemaMigrator.migrate(pool: pool, logger: logger)
        print(report.from == report.to
            ? "schema \(settings.schema) is up to date at version \(report.to)"
            : "schema \(settings.schema) migrated from version \(report.from) to \(report.to)")
        await pool.shutdown()
    }
}

/// Keeps the pool open while the daemon runs and closes it last on shutdown.
struct PoolService: Service {
    let pool: PostgresPool

    func run() async throws {
        try? await gracefulShutdown()
        await pool.shutdown()
    }
}

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
