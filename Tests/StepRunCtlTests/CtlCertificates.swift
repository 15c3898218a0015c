#if canImport(Glibc)
import Glibc
#endif
import Foundation
import NIOSSL
import StepRunCore

/// A throwaway CA with a server certificate (for 127.0.0.1 and localhost) and a client certificate,
/// made with openssl as an operator would; the same recipe as StepRunEndToEndTests' TestCertificates.
/// A second, unrelated CA signs `stranger`, a client certificate the daemon must not accept;
/// `named` is a server certificate for the DNS name `steprund.test` only (no IP address), for
/// checks of `--tls-server-name`.
struct CtlCertificates: Sendable {
    let directory: String
    var ca: String { directory + "/ca.pem" }
    var serverCertificate: String { directory + "/server.pem" }
    var serverKey: String { directory + "/server.key" }
    var clientCertificate: String { directory + "/client.pem" }
    var clientKey: String { directory + "/client.key" }
    var strangerCertificate: String { directory + "/stranger.pem" }
    var strangerKey: String { directory + "/stranger.key" }
    /// The only name in `named`'s certificate.
    static let serverName = "steprund.test"

    static let shared = Task<CtlCertificates, any Error> {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("steprunctl-tls-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        let script = """
            set -e; cd '\(directory)'
            openssl req -x509 \(key) -keyout ca.key -out ca.pem -days 2 -subj /CN=steprunctl-test-ca
            openssl req -x509 \(key) -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=steprunctl-other-ca
            for name in server client stranger named; do
              issuer=ca; [ $name = stranger ] && issuer=other-ca
              names=IP:127.0.0.1,DNS:localhost; [ $name = named ] && names=DNS:\(Self.serverName)
              openssl req \(key) -keyout $name.key -out $name.csr -subj /CN=$name
              printf 'subjectAltName=%s\\nextendedKeyUsage=serverAuth,clientAuth\\n' $names > $name.ext
              openssl x509 -req -in $name.csr -CA $issuer.pem -CAkey $issuer.key -CAcreateserial -out $name.pem -days 2 -extfile $name.ext
            done
            """
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: system("(\(script)) > '\(directory)/openssl.log' 2>&1")) }.start()
        }
        guard status == 0 else { throw StepRunError.internal("openssl failed; see \(directory)/openssl.log") }
        return CtlCertificates(directory: directory)
    }

    /// TLS for the daemon's TCP listener, requiring a client certificate signed by the CA; with
    /// `named`, the daemon presents the certificate that names only `serverName`.
    func serverTLS(named: Bool = false) throws -> TLSConfiguration {
        let name = named ? "named" : "server"
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: try NIOSSLCertificate.fromPEMFile(directory + "/\(name).pem").map { .certificate($0) },
            privateKey: .privateKey(try NIOSSLPrivateKey(file: directory + "/\(name).key", format: .pem)))
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .file(ca)
        return configuration
    }
}
