import Foundation
import Logging
import NIOSSL
import StepRunCore
import StepRunPostgres
import StepRunServer
import StepRunTesting
import StepRunWire

/// An in-process steprund (real server, real repository, real Postgres) for steprunctl to talk to.
///
/// The idea of StepRunEndToEndTests' TestDaemon, cut down to what these tests need: a Unix socket,
/// a TCP listener with a token, and the token in a file as an operator would keep it.
struct CtlDaemon: Sendable {
    let repository: StepRunRepository
    let unixPath: String
    let tcpPort: Int
    let token: String
    let tokenFile: String

    static let logger: Logger = {
        var logger = Logger(label: "steprun.ctl-tests")
        logger.logLevel = .critical
        return logger
    }()

    private static let repository = Task<StepRunRepository, any Error> {
        try await TestDatabase.makeRepository(PostgresConfiguration(connectionString: try TestDatabase.url, poolSize: 4), logger: logger)
    }

    private static let started = Task<CtlDaemon, any Error> {
        try await start(repository: try await repository.value, databaseReachable: true)
    }

    private static let startedWithoutDatabase = Task<CtlDaemon, any Error> {
        try await start(repository: try await repository.value, databaseReachable: false)
    }

    private static let startedWithSmallFrames = Task<CtlDaemon, any Error> {
        try await start(repository: try await repository.value, databaseReachable: true, maxFrameBytes: smallFrameBytes)
    }

    /// The max frame of `withSmallFrames()`: 64 KiB, so a few modest outputs outgrow one response.
    static let smallFrameBytes = 64 << 10

    /// A daemon whose responses are at most `smallFrameBytes`, for lists that take several pages.
    static func withSmallFrames() async throws -> CtlDaemon {
        try await startedWithSmallFrames.value
    }

    private static let startedWithTLS = Task<CtlDaemon, any Error> {
        let certificates = try await TestCertificates.shared.value
        return try await start(repository: try await repository.value, databaseReachable: true, tls: try certificates.serverTLS())
    }

    private static let startedWithNamedTLS = Task<CtlDaemon, any Error> {
        let certificates = try await TestCertificates.shared.value
        return try await start(repository: try await repository.value, databaseReachable: true, tls: try certificates.serverTLS(named: true))
    }

    /// The daemon shared by the suite; tests isolate themselves with fresh run ids.
    static func shared() async throws -> CtlDaemon {
        try await started.value
    }

    /// A daemon whose health check reports its database unreachable (the store itself still works).
    static func withUnreachableDatabase() async throws -> CtlDaemon {
        try await startedWithoutDatabase.value
    }

    /// A daemon serving TCP over TLS that requires a client certificate signed by `TestCertificates`' CA.
    /// With `named`, its certificate names only `TestCertificates.serverName`, not 127.0.0.1.
    static func withTLS(named: Bool = false) async throws -> CtlDaemon {
        try await (named ? startedWithNamedTLS : startedWithTLS).value
    }

    private static func start(
        repository: StepRunRepository, databaseReachable: Bool, tls: TLSConfiguration? = nil,
        maxFrameBytes: Int = WireProtocol.defaultMaxFrameBytes
    ) async throws -> CtlDaemon {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steprunctl-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let unixPath = directory.appendingPathComponent("steprund.sock").path
        let token = "ctl-token-\(UUID().uuidString)"
        let tokenFile = directory.appendingPathComponent("token").path
        try Data("\(token)\n".utf8).write(to: URL(fileURLWithPath: tokenFile))
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: tokenFile)

        let started = try await TestServer.start(
            store: repository, unixPath: unixPath, token: token,
            health: { deadline in
                guard databaseReachable else {
                    return .init(serving: false, databaseLatencyMicros: -1, message: "UNAVAILABLE: database is down (simulated)")
                }
                do {
                    let latency = try await repository.checkHealth(deadline: deadline)
                    let micros = latency.components.seconds * 1_000_000 + latency.components.attoseconds / 1_000_000_000_000
                    return .init(serving: true, databaseLatencyMicros: micros, message: "ok")
                } catch {
                    return .init(serving: false, databaseLatencyMicros: -1, message: "\(error)")
                }
            },
            logger: logger
        ) { configuration in
            configuration.maxFrameBytes = maxFrameBytes
            configuration.storeLimits = StoreLimits(maxPayloadBytes: min(1 << 20, StoreLimits.maxPayloadBytes(fittingFrame: maxFrameBytes)))
            configuration.tls = tls
        }
        return CtlDaemon(repository: repository, unixPath: started.unixPath, tcpPort: started.tcpPort, token: token, tokenFile: tokenFile)
    }

    /// The flag that points steprunctl at this daemon's Unix socket.
    var unixFlags: [String] { ["--unix-socket", unixPath] }

    /// The flags that point steprunctl at this daemon's TCP listener with its token.
    var tcpFlags: [String] { ["--tcp", "127.0.0.1:\(tcpPort)", "--token-file", tokenFile] }
}
