import Foundation
import Logging
import NIOSSL
import StepRunClient
import StepRunCore
import StepRunServer
import StepRunWire
import Synchronization
import Testing
import StepRunTesting

/// The log lines a daemon wrote, for tests of what it tells its operator.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])

    var logger: Logger {
        var logger = Logger(label: "steprun.e2e.captured") { _ in CapturingLogHandler(log: self) }
        logger.logLevel = .notice
        return logger
    }

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    func contains(_ text: String) -> Bool { lines.withLock { $0.contains { $0.contains(text) } } }
}

struct CapturingLogHandler: LogHandler {
    let log: CapturedLog
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .notice

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        log.append("\(event.level) \(event.message)")
    }
}

@Suite("TLS on one side only")
struct TLSMismatchTests {
    @Test("a plain client on a TLS port is told UNAVAILABLE: the endpoint speaks TLS (not an oversized frame)")
    func plainClientOnTLSPort() async throws {
        let shared = try await TestDaemon.shared()
        let certificates = try await TestCertificates.shared.value
        let daemon = try await TestDaemon.start(repository: shared.repository) { $0.tls = try? certificates.serverTLS(requireClientCertificate: false) }
        defer { daemon.server.shutdown() }
        let plain = StepRunClient(
            target: .tcp(host: "127.0.0.1", port: daemon.tcpPort, token: daemon.token), configuration: .init(connectTimeout: .seconds(20)))
        let error = await storeError { _ = try await plain.health(timeout: .seconds(20)) }
        #expect(error?.code == .unavailable, "\(String(describing: error))")
        #expect(error?.message.contains("this endpoint speaks TLS") == true, "\(String(describing: error))")
        await plain.close()
    }

    @Test("a TLS client on a plain port: the daemon logs that the peer tried TLS and closes without a plain answer")
    func tlsClientOnPlainPort() async throws {
        let shared = try await TestDaemon.shared()
        let log = CapturedLog()
        let daemon = try await TestDaemon.start(repository: shared.repository, logger: log.logger)
        defer { daemon.server.shutdown() }
        try await Self.expectTLSClientRefused(by: daemon, log: log)
    }
    @Test("a TLS client on a plain port with a 1 GiB frame limit is still recognised at once, not left waiting for a 350 MB frame")
    func tlsClientOnPlainPortWithHugeFrameLimit() async throws {
        let shared = try await TestDaemon.shared()
        let log = CapturedLog()
        let daemon = try await TestDaemon.start(repository: shared.repository, logger: log.logger) {
            $0.maxFrameBytes = ServerConfiguration.maxFrameBytesLimit
            $0.storeLimits.maxPayloadBytes = StoreLimits.maxPayloadBytesLimit
            // Far longer than the wait below: only TLS detection, not the handshake timeout, can close it in time.
            $0.handshakeTimeout = .seconds(600)
            let configured = $0
            #expect(throws: Never.self) { try configured.validate() }
        }
        defer { daemon.server.shutdown() }
        try await Self.expectTLSClientRefused(by: daemon, log: log)
    }

    /// A TLS client against `daemon`'s plain TCP port fails, the daemon logs that the peer tried
    /// TLS (the log is `daemon`'s), and plain clients are served as before.
    private static func expectTLSClientRefused(by daemon: TestDaemon, log: CapturedLog) async throws {
        let certificates = try await TestCertificates.shared.value
        let tlsClient = StepRunClient(
            target: .tcp(host: "127.0.0.1", port: daemon.tcpPort, token: daemon.token),
            configuration: .init(connectTimeout: .seconds(20), tls: try certificates.clientTLS(withCertificate: false)))
        let error = await storeError { _ = try await tlsClient.health(timeout: .seconds(20)) }
        #expect(error != nil)
        await tlsClient.close()
        #expect(await eventually(timeout: .seconds(30)) { log.contains("the peer tried TLS on a plain (non-TLS) port") })
        let plain = daemon.client(.tcp)
        #expect(try await plain.health().serving)
        await plain.close()
    }
}
