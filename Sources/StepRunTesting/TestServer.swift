import Foundation
import Logging
import StepRunCore
import StepRunServer
import StepRunWire

/// An in-process StepRunServer (the real server, on real sockets) over any store: the Postgres
/// repository for the end-to-end suites, a `ScriptedStore` for the server's own tests. It listens
/// on a fresh Unix socket and on TCP 127.0.0.1 with a fresh token.
public struct TestServer: Sendable {
    public let server: StepRunServer
    public let unixPath: String
    public let tcpPort: Int
    public let token: String

    public static let logger: Logger = {
        var logger = Logger(label: "steprun.test-server")
        logger.logLevel = .critical
        return logger
    }()

    /// Starts a server answering from `store` and waits until it listens. `health` answers
    /// health calls (by default: serving); `configure` changes the configuration first.
    public static func start(
        store: any StepRunStore, unixPath: String? = nil, token: String = "test-token-\(UUID().uuidString)",
        health: @escaping HealthCheck = { _ in HealthReply(serving: true, databaseLatencyMicros: 0, message: "ok") },
        logger: Logger = TestServer.logger, configure: (inout ServerConfiguration) -> Void = { _ in }
    ) async throws -> TestServer {
        let unixPath = unixPath ?? TestDatabase.temporaryPath("steprund") + ".sock"
        var configuration = ServerConfiguration(unixSocketPath: unixPath, tcp: ("127.0.0.1", 0), tcpToken: token)
        configure(&configuration)
        let server = StepRunServer(configuration: configuration, store: store, health: health, logger: logger)
        Task { try await server.run() }
        let bound = try await server.listening()
        return TestServer(server: server, unixPath: bound.unixSocketPath ?? unixPath, tcpPort: bound.tcpPort ?? 0, token: token)
    }
}
