#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOSSL
import StepRunClient
import StepRunCore
import StepRunServer
import Testing
import StepRunTesting

@Suite("Transport security")
struct SecurityTests {
    @Test("TLS on TCP: a client trusting the CA is served; plain TCP and an untrusting client are not")
    func tls() async throws {
        let shared = try await TestDaemon.shared()
        let certificates = try await TestCertificates.shared.value
        let daemon = try await TestDaemon.start(repository: shared.repository) { $0.tls = try? certificates.serverTLS(requireClientCertificate: false) }
        defer { daemon.server.shutdown() }

        let trusted = StepRunClient(
            target: .tcp(host: "127.0.0.1", port: daemon.tcpPort, token: daemon.token),
            configuration: .init(connectTimeout: .seconds(3), tls: try certificates.clientTLS(withCertificate: false)))
        let (stepRun, decision) = try await trusted.beginStep(runID: UUID(), step: "over-tls")
        #expect(decision == .execute)
        #expect(stepRun.step == "over-tls")
        await trusted.close()

        let plain = StepRunClient(
            target: .tcp(host: "127.0.0.1", port: daemon.tcpPort, token: daemon.token), configuration: .init(connectTimeout: .seconds(2)))
        #expect(await storeError { _ = try await plain.health(timeout: .seconds(2)) } != nil)
        await plain.close()

        let untrusting = StepRunClient(
            target: .tcp(host: "127.0.0.1", port: daemon.tcpPort, token: daemon.token),
            configuration: .init(connectTimeout: .seconds(2), tls: TLSConfiguration.makeClientConfiguration()))
        #expect(await storeError { _ = try await untrusting.health(timeout: .seconds(2)) } != nil)
        await untrusting.close()
    }

    @Test("mutual TLS: a client without a certificate signed by the client CA is refused")
    func mutualTLS() async throws {
        let shared = try await TestDaemon.shared()
        let certificates = try await TestCertificates.shared.value
        let daemon = try await TestDaemon.start(repository: shared.repository) { $0.tls = try? certificates.serverTLS(requireClientCertificate: true) }
        defer { daemon.server.shutdown() }
        let target = StepRunClient.Target.tcp(host: "127.0.0.1", port: daemon.tcpPort, token: daemon.token)

        let withCertificate = StepRunClient(target: target, configuration: .init(tls: try certificates.clientTLS(withCertificate: true)))
        #expect(try await withCertificate.health().serving)
        await withCertificate.close()

        let without = StepRunClient(target: target, configuration: .init(connectTimeout: .seconds(2), tls: try certificates.clientTLS(withCertificate: false)))
        #expect(await storeError { _ = try await without.health(timeout: .seconds(2)) } != nil)
        await without.close()
    }

    @Test("the Unix socket's peer allow-list admits listed users and refuses others")
    func peerAllowList() async throws {
        let shared = try await TestDaemon.shared()
        let allowed = try await TestDaemon.start(repository: shared.repository) { $0.allowedPeerUIDs = [getuid()] }
        defer { allowed.server.shutdown() }
        let admitted = allowed.client(.unix)
        #expect(try await admitted.health().serving)
        await admitted.close()

        let refusing = try await TestDaemon.start(repository: shared.repository) {
            $0.allowedPeerUIDs = [getuid() &+ 4242]
            $0.allowedPeerGIDs = [getgid() &+ 4242]
        }
        defer { refusing.server.shutdown() }
        let refused = refusing.client(.unix)
        // The refusal is immediate; the long timeout only keeps a loaded machine (the whole suite
        // runs at once, the overload fault test included) from turning it into DEADLINE_EXCEEDED.
        let refusal = await storeError { _ = try await refused.health(timeout: .seconds(15)) }
        #expect(refusal?.code == .unavailable, "\(String(describing: refusal))")
        await refused.close()
    }
}
