import Foundation
import StepRunCore
import StepRunTesting
import Testing

/// steprunctl against a daemon that serves TCP over TLS and requires client certificates.
@Suite("Reaching a TLS daemon")
struct TLSTests {
    static func tlsFlags(_ certificates: TestCertificates) -> [String] {
        ["--tls-ca", certificates.ca, "--tls-cert", certificates.clientCertificate, "--tls-key", certificates.clientKey]
    }

    @Test func theCAAndAClientCertificateReachATLSDaemon() async throws {
        let daemon = try await CtlDaemon.withTLS()
        let certificates = try await TestCertificates.shared.value
        let runID = UUID.v7()
        try await daemon.completedStep(runID: runID, step: "charge", output: ["receipt": "r-1"])

        let result = try await Steprunctl.run(["get", runID.uuidString, "charge", "--json"] + daemon.tcpFlags + Self.tlsFlags(certificates))

        #expect(result.status == 0, "\(result)")
        #expect(try parseJSONObject(result.stdout)["status"] as? String == "completed")
    }

    @Test func theTLSFilesComeFromTheEnvironment() async throws {
        let daemon = try await CtlDaemon.withTLS()
        let certificates = try await TestCertificates.shared.value

        let result = try await Steprunctl.run(
            ["health", "--json"],
            environment: [
                "STEPRUN_TCP": "127.0.0.1:\(daemon.tcpPort)", "STEPRUN_TOKEN_FILE": daemon.tokenFile,
                "STEPRUNCTL_TLS_CA": certificates.ca, "STEPRUNCTL_TLS_CERT": certificates.clientCertificate,
                "STEPRUNCTL_TLS_KEY": certificates.clientKey,
            ])

        #expect(result.status == 0, "\(result)")
        #expect(try parseJSONObject(result.stdout)["serving"] as? Bool == true)
    }

    @Test func theServerNameIsWhatTheDaemonsCertificateIsCheckedAgainst() async throws {
        // The daemon's certificate names only steprund.test, so reaching it at 127.0.0.1 needs the name.
        let daemon = try await CtlDaemon.withTLS(named: true)
        let certificates = try await TestCertificates.shared.value
        let flags = daemon.tcpFlags + Self.tlsFlags(certificates)

        let named = try await Steprunctl.run(["health", "--json", "--tls-server-name", TestCertificates.serverName] + flags)
        let unnamed = try await Steprunctl.run(["health", "--json"] + flags)
        let wrong = try await Steprunctl.run(["health", "--json", "--tls-server-name", "db.example.com"] + flags)

        #expect(named.status == 0, "\(named)")
        #expect(unnamed.status == 5, "\(unnamed)")
        #expect(wrong.status == 5, "\(wrong)")
    }

    @Test func aClientCertificateFromAnotherCAIsRefused() async throws {
        let daemon = try await CtlDaemon.withTLS()
        let certificates = try await TestCertificates.shared.value

        let result = try await Steprunctl.run(
            ["health", "--json"] + daemon.tcpFlags
                + ["--tls-ca", certificates.ca, "--tls-cert", certificates.strangerCertificate, "--tls-key", certificates.strangerKey])

        #expect(result.status == 5, "\(result)")
    }

    @Test func withoutTLSTheErrorSaysTheEndpointSpeaksTLS() async throws {
        let daemon = try await CtlDaemon.withTLS()

        let result = try await Steprunctl.run(["health", "--json"] + daemon.tcpFlags)

        #expect(result.status == 5, "\(result)")
        #expect(result.stderr.contains("UNAVAILABLE: this endpoint speaks TLS; connect with TLS"), "\(result)")
        #expect(!result.stderr.contains("RESOURCE_EXHAUSTED"), "\(result)")
    }

    @Test func aClientCertificateWithoutItsKeyIsAUsageError() async throws {
        let daemon = try await CtlDaemon.withTLS()
        let certificates = try await TestCertificates.shared.value

        let result = try await Steprunctl.run(["health"] + daemon.tcpFlags + ["--tls-cert", certificates.clientCertificate])

        #expect(result.status == 2, "\(result)")
        #expect(result.stderr.contains("--tls-cert and --tls-key go together"), "\(result)")
    }

    @Test func tlsFlagsWithTheUnixSocketAreAUsageError() async throws {
        let daemon = try await CtlDaemon.withTLS()
        let certificates = try await TestCertificates.shared.value

        let result = try await Steprunctl.run(["health"] + daemon.unixFlags + ["--tls-ca", certificates.ca])

        #expect(result.status == 2, "\(result)")
    }

    @Test func anUnreadableCAFileIsAnInvalidArgument() async throws {
        let daemon = try await CtlDaemon.withTLS()

        let result = try await Steprunctl.run(["health"] + daemon.tcpFlags + ["--tls-ca", "/nonexistent/ca.pem"])

        #expect(result.status == 6, "\(result)")
        #expect(result.stderr.contains("/nonexistent/ca.pem"), "\(result)")
    }
}
