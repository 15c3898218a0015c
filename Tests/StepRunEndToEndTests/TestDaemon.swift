import Foundation
import Logging
import NIOCore
import NIOPosix
import StepRunClient
import StepRunCore
import StepRunPostgres
import StepRunServer
import StepRunWire

/// One in-process steprund (real server, real repository, real Postgres) shared by the suite.
struct TestDaemon: Sendable {
    let server: StepRunServer
    let repository: StepRunRepository
    let unixPath: String
    let tcpPort: Int
    let token: String

    static let logger: Logger = {
        var logger = Logger(label: "steprun.e2e")
        logger.logLevel = .critical
        return logger
    }()

    static func databaseURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["STEPRUN_TEST_DATABASE_URL"], !url.isEmpty else {
            throw StepRunError.failedPrecondition(
                "STEPRUN_TEST_DATABASE_URL is not set: run `make test`, or point it at a database you can write to")
        }
        return url
    }

    private static let started = Task<TestDaemon, any Error> {
        let pool = PostgresPool(
            configuration: PostgresConfiguration(connectionString: try databaseURL(), poolSize: 8), logger: logger)
        try await SchemaMigrator.migrate(pool: pool, logger: logger)
        // The response budget the daemon's own settings give its repository (Steprund).
        let repository = StepRunRepository(pool: pool, limits: StoreLimits(maxResponseBytes: WireProtocol.defaultMaxFrameBytes))
        return try await start(repository: repository)
    }

    /// The shared daemon.
    static func shared() async throws -> TestDaemon {
        try await started.value
    }

    /// A daemon of its own over the shared repository whose store answers every call only after
    /// `delay` (`SlowStore`): for tests of deadlines and limits on calls in flight.
    static func slow(_ delay: Duration, configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestDaemon {
        let repository = try await shared().repository
        return try await start(repository: repository, store: SlowStore(inner: repository, delay: delay), configure: configure)
    }

    /// Starts a daemon of its own (for tests that shut one down or change limits).
    /// `store` wraps the repository when a test needs to hold calls in flight (see `SlowStore`).
    /// `logger` receives the daemon's log (a test of what it logs passes a capturing one).
    static func start(
        repository: StepRunRepository, store: (any StepRunStore)? = nil, logger: Logger = TestDaemon.logger,
        configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestDaemon {
        let token = "test-token-\(UUID().uuidString)"
        let unixPath = FileManager.default.temporaryDirectory.appendingPathComponent("steprund-\(UUID().uuidString.prefix(8)).sock").path
        var configuration = ServerConfiguration(unixSocketPath: unixPath, tcp: ("127.0.0.1", 0), tcpToken: token)
        configure(&configuration)
        let server = StepRunServer(
            configuration: configuration, store: store ?? repository,
            health: { deadline in await .probing { try await repository.checkHealth(deadline: deadline) } },
            logger: logger)
        Task { try await server.run() }
        let bound = try await server.listening()
        return TestDaemon(
            server: server, repository: repository, unixPath: bound.unixSocketPath ?? unixPath, tcpPort: bound.tcpPort ?? 0,
            token: token)
    }

    /// A client of this daemon. The whole suite runs at once in one process, on CI machines with two
    /// (sometimes half-stolen) vCPUs, so connecting is given 30 s rather than the default 5: a test
    /// here asserts what the daemon answers, never how fast. Tests of the connect timeout make
    /// their own clients.
    func client(_ transport: Transport, token: String? = nil) -> StepRunClient {
        let configuration = StepRunClient.Configuration(connectTimeout: .seconds(30))
        switch transport {
        case .unix: return StepRunClient(target: .unix(path: unixPath), configuration: configuration)
        case .tcp: return StepRunClient(target: .tcp(host: "127.0.0.1", port: tcpPort, token: token ?? self.token), configuration: configuration)
        }
    }
}

/// The two ways workers reach the daemon; most tests run over both.
enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case unix
    case tcp
    var testDescription: String { rawValue }
}

import Testing

/// Returns the `StepRunError` `body` throws, or nil.
func storeError(_ body: () async throws -> Void) async -> StepRunError? {
    do {
        try await body()
        return nil
    } catch let error as StepRunError {
        return error
    } catch {
        return .internal("not a StepRunError: \(error)")
    }
}
