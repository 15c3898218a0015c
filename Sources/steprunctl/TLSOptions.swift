import ArgumentParser
import Foundation
import NIOSSL
import StepRunClient

/// TLS towards a daemon that serves TCP over TLS (steprund `--tls-cert`/`--tls-key`, and
/// `--tls-client-ca` when it requires client certificates).
///
/// Unlike the address and token, the environment variables are steprunctl's own (`STEPRUNCTL_TLS_*`):
/// steprund's `STEPRUN_TLS_CERT` and `STEPRUN_TLS_KEY` are the *server's* certificate, which a
/// client must not present as its own when it shares the daemon's environment file.
struct TLSOptions: ParsableArguments {
    @Flag(name: .customLong("tls"), help: "Connect over TLS, trusting the system's CA certificates (env STEPRUNCTL_TLS=1). Implied by the other --tls options.")
    var enabled = false

    @Option(
        name: .customLong("tls-ca"),
        help: ArgumentHelp("PEM CA bundle to verify the daemon's certificate with; connects over TLS (env STEPRUNCTL_TLS_CA).", valueName: "path"))
    var ca: String?

    @Option(
        name: .customLong("tls-cert"),
        help: ArgumentHelp("PEM client certificate chain, for a daemon that requires one; with --tls-key (env STEPRUNCTL_TLS_CERT).", valueName: "path"))
    var certificate: String?

    @Option(
        name: .customLong("tls-key"),
        help: ArgumentHelp("PEM private key of --tls-cert (env STEPRUNCTL_TLS_KEY).", valueName: "path"))
    var key: String?

    @Option(
        name: .customLong("tls-server-name"),
        help: ArgumentHelp(
            "Name the daemon's certificate must carry, when it is not the --tcp host (env STEPRUNCTL_TLS_SERVER_NAME).", valueName: "name"))
    var serverName: String?

    /// True when a TLS option was given on the command line (not through the environment).
    var givenAsFlag: Bool { enabled || ca != nil || certificate != nil || key != nil || serverName != nil }

    /// The TLS settings in force: flags first, each falling back to its environment variable.
    struct Resolved {
        var ca: String?
        var certificate: String?
        var key: String?
        var serverName: String?
    }

    /// The TLS to use for a TCP connection, or nil for plain TCP.
    func resolve(environment: [String: String]) throws -> Resolved? {
        func env(_ name: String) -> String? {
            guard let value = environment[name], !value.isEmpty else { return nil }
            return value
        }
        let resolved = Resolved(
            ca: ca ?? env("STEPRUNCTL_TLS_CA"), certificate: certificate ?? env("STEPRUNCTL_TLS_CERT"),
            key: key ?? env("STEPRUNCTL_TLS_KEY"), serverName: serverName ?? env("STEPRUNCTL_TLS_SERVER_NAME"))
        let switchedOn = enabled || ["1", "true", "yes", "on"].contains(env("STEPRUNCTL_TLS")?.lowercased() ?? "")
        guard switchedOn || resolved.ca != nil || resolved.certificate != nil || resolved.key != nil || resolved.serverName != nil else {
            return nil
        }
        guard (resolved.certificate == nil) == (resolved.key == nil) else {
            throw CtlError(.usage, "--tls-cert and --tls-key go together (or STEPRUNCTL_TLS_CERT and STEPRUNCTL_TLS_KEY)")
        }
        return resolved
    }
}

extension TLSOptions.Resolved {
    /// The client TLS configuration; a file that cannot be read is refused here, before connecting.
    func configuration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let ca {
            configuration.trustRoots = .certificates(try load("CA bundle", ca) { try Self.certificates($0) })
        }
        if let certificate, let key {
            configuration.certificateChain = try load("client certificate", certificate) { try Self.certificates($0) }
                .map { .certificate($0) }
            configuration.privateKey = .privateKey(try load("client key", key) { try NIOSSLPrivateKey(file: $0, format: .pem) })
        }
        return configuration
    }

    private static func certificates(_ path: String) throws -> [NIOSSLCertificate] {
        let certificates = try NIOSSLCertificate.fromPEMFile(path)
        guard !certificates.isEmpty else { throw CtlError(.invalidArgument, "no PEM certificate in it") }
        return certificates
    }

    private func load<Value>(_ what: String, _ path: String, _ body: (String) throws -> Value) throws -> Value {
        guard FileManager.default.isReadableFile(atPath: path) else {
            throw CtlError(.invalidArgument, "cannot read the TLS \(what) \(path)")
        }
        do {
            return try body(path)
        } catch {
            throw CtlError(.invalidArgument, "cannot load the TLS \(what) \(path) as PEM: \(error)")
        }
    }
}
