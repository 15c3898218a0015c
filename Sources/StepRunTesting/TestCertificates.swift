#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOSSL
import StepRunCore

/// A throwaway CA with a server certificate (for 127.0.0.1 and localhost) and a client
/// certificate, made with openssl as an operator would. A second, unrelated CA signs `stranger`,
/// a client certificate the daemon must not accept; `named` is a server certificate for the DNS
/// name `serverName` only (no IP address), for checks of `--tls-server-name`.
public struct TestCertificates: Sendable {
    public let directory: String
    public var ca: String { directory + "/ca.pem" }
    public var serverCertificate: String { directory + "/server.pem" }
    public var serverKey: String { directory + "/server.key" }
    public var clientCertificate: String { directory + "/client.pem" }
    public var clientKey: String { directory + "/client.key" }
    public var strangerCertificate: String { directory + "/stranger.pem" }
    public var strangerKey: String { directory + "/stranger.key" }
    /// The only name in `named`'s certificate.
    public static let serverName = "steprund.test"

    /// Made once per test process.
    public static let shared = Task<TestCertificates, any Error> {
        let directory = TestDatabase.temporaryPath("steprun-tls")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        let script = """
            set -e; cd '\(directory)'
            openssl req -x509 \(key) -keyout ca.key -out ca.pem -days 2 -subj /CN=steprun-test-ca
            openssl req -x509 \(key) -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=steprun-other-ca
            for name in server client stranger named; do
              issuer=ca; [ $name = stranger ] && issuer=other-ca
              names=IP:127.0.0.1,DNS:localhost; [ $name = named ] && names=DNS:\(Self.serverName)
              openssl req \(key) -keyout $name.key -out $name.csr -subj /CN=$name
              printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' $names > $name.ext
              openssl x509 -req -in $name.csr -CA $issuer.pem -CAkey $issuer.key -CAcreateserial -out $name.pem -days 2 -extfile $name.ext
            done
            """
        // On a thread of its own: openssl takes a while, and the cooperative pool has two threads.
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: system("(\(script)) > '\(directory)/openssl.log' 2>&1")) }.start()
        }
        guard status == 0 else { throw StepRunError.internal("openssl failed; see \(directory)/openssl.log") }
        return TestCertificates(directory: directory)
    }

    /// TLS for the daemon's TCP listener; with `requireClientCertificate`, only clients with a
    /// certificate signed by the CA get in; with `named`, the daemon presents the certificate that
    /// names only `serverName`.
    public func serverTLS(requireClientCertificate: Bool = true, named: Bool = false) throws -> TLSConfiguration {
        let name = named ? "named" : "server"
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(directory + "/\(name).pem").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: directory + "/\(name).key", format: .pem)))
        if requireClientCertificate {
            configuration.certificateVerification = .noHostnameVerification
            configuration.trustRoots = .file(ca)
        }
        return configuration
    }

    /// TLS for a client trusting the CA, presenting the client certificate if `withCertificate`.
    public func clientTLS(withCertificate: Bool) throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(ca)
        if withCertificate {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(clientCertificate).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: clientKey, format: .pem))
        }
        return configuration
    }
}
