import Foundation
import Logging
import NIOCore
import NIOPosix
import StepRunClient
import StepRunCore
import StepRunPostgres
import StepRunServer
import StepRunTesting
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

    private static let started = Task<TestDaemon, any Error> {
        // The response budget the daemon's own settings give its repository (Steprund).
        let repository = try await TestDatabase.makeRepository(
            PostgresConfiguration(connectionString: try TestDatabase.url, poolSize: 8),
            limits: StoreLimits(maxResponseBytes: WireProtocol.defaultMaxFrameBytes), logger: logger)
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
        let started = try await TestServer.start(
            store: store ?? repository,
            health: { deadline in await .probing { try await repository.checkHealth(deadline: deadline) } },
            logger: logger, configure: configure)
        return TestDaemon(
            server: started.server, repository: repository, unixPath: started.unixPath, tcpPort: started.tcpPort, token: started.token)
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

extension RawConnection {
    static func connect(_ daemon: TestDaemon, _ transport: Transport) async throws -> RawConnection {
        switch transport {
        case .unix: try await connect(.unix(path: daemon.unixPath))
        case .tcp: try await connect(.tcp(port: daemon.tcpPort))
        }
    }
}
