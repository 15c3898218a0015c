import Foundation
import Logging
import NIOSSL
import StepRunCore
import StepRunPostgres
import StepRunServer

/// Every setting, resolved from flags, then environment, then the config file, then defaults.
struct Settings {
    /// Config-file keys (the long flag names), each with its environment variable.
    static let environmentNames: [String: String] = [
        "database-url": "STEPRUN_DATABASE_URL", "schema": "STEPRUN_SCHEMA", "pool-size": "STEPRUN_POOL_SIZE",
        "unix-socket": "STEPRUN_UNIX_SOCKET", "no-unix-socket": "STEPRUN_NO_UNIX_SOCKET", "tcp": "STEPRUN_TCP",
        "no-tcp": "STEPRUN_NO_TCP", "token-file": "STEPRUN_TOKEN_FILE", "insecure-no-auth": "STEPRUN_INSECURE_NO_AUTH",
        "max-frame-bytes": "STEPRUN_MAX_FRAME_BYTES", "max-payload-bytes": "STEPRUN_MAX_PAYLOAD_BYTES",
        "max-in-flight": "STEPRUN_MAX_IN_FLIGHT", "max-connections": "STEPRUN_MAX_CONNECTIONS",
        "max-wait-queue": "STEPRUN_MAX_WAIT_QUEUE", "request-timeout": "STEPRUN_REQUEST_TIMEOUT",
        "statement-timeout": "STEPRUN_STATEMENT_TIMEOUT", "idle-timeout": "STEPRUN_IDLE_TIMEOUT",
        "handshake-timeout": "STEPRUN_HANDSHAKE_TIMEOUT",
        "shutdown-grace": "STEPRUN_SHUTDOWN_GRACE", "log-level": "STEPRUN_LOG_LEVEL", "metrics": "STEPRUN_METRICS", "data-dir": "STEPRUN_DATA_DIR", "group-commit-max": "STEPRUN_GROUP_COMMIT_MAX",
        "inline-read-wait": "STEPRUN_INLINE_READ_WAIT", "inline-write-wait": "STEPRUN_INLINE_WRITE_WAIT",
        "group-commit-hold": "STEPRUN_GROUP_COMMIT_HOLD",
        "tls-cert": "STEPRUN_TLS_CERT", "tls-key": "STEPRUN_TLS_KEY", "tls-client-ca": "STEPRUN_TLS_CLIENT_CA",
        "allow-uids": "STEPRUN_ALLOW_UIDS", "allow-gids": "STEPRUN_ALLOW_GIDS",
    ]
    /// Old spellings that still work — as a flag, an environment variable (`STEPRUN_` + the old
    /// key in capitals) or a config key — each with the key that replaced it. Using one logs a
    /// deprecation warning at start-up (`deprecations`); the new spelling wins where both are given.
    static let deprecatedKeys: [String: String] = ["group-hold": "group-commit-hold"]
    static var knownKeys: Set<String> { Set(environmentNames.keys).union(deprecatedKeys.keys) }

    static func environmentName(ofDeprecated key: String) -> String {
        "STEPRUN_" + key.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    static let defaultUnixSocket = "/run/steprund/steprund.sock"

    var databaseURL: String?
    var schema = "steprun"
    var poolSize = 8
    var maxWaitQueue = 4096
    var groupCommitMax = 64
    var groupCommitHold = 8
    var inlineReadWait: Duration = .microseconds(200)
    var inlineWriteWait: Duration = .microseconds(200)
    var statementTimeout: Duration = .seconds(30)
    var unixSocket: String? = Settings.defaultUnixSocket
    var tcp: (host: String, port: Int)?
    var tokenFile: String?
    var insecureNoAuth = false
    var maxFrameBytes = 8 << 20
    var maxPayloadBytes = 1 << 20
    var maxInFlight = 128
    var maxConnections = 4096
    var requestTimeout: Duration = .seconds(30)
    var idleTimeout: Duration = .seconds(300)
    var handshakeTimeout: Duration = .seconds(10)
    var shutdownGrace: Duration = .seconds(30)
    var logLevel: Logger.Level = .info
    var metrics: (host: String, port: Int)?
    var tlsCertificate: String?
    var tlsKey: String?
    var tlsClientCA: String?
    var allowedUIDs: Set<UInt32>?
    var allowedGIDs: Set<UInt32>?
    /// Where the embedded development database lives when no database URL is configured.
    var dataDirectory = ".steprun"
    /// One line per deprecated spelling that was used, to be logged at start-up.
    private(set) var deprecations: [String] = []

    /// Resolves `flags` (already parsed, nil when not given) over the environment and config file.
    init(flags: [String: String], environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let configPath = flags["config"] ?? environment["STEPRUN_CONFIG"]
        let file = try configPath.map { try ConfigFile(path: $0) } ?? ConfigFile()
        var deprecations: [String] = []
        let oldKeys = Dictionary(Self.deprecatedKeys.map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        func value(_ key: String) -> String? {
            // At each level the current spelling first, then the deprecated one it replaced.
            let old = oldKeys[key]
            func deprecated(_ spelling: String, _ replacement: String, _ found: String) -> String {
                deprecations.append("\(spelling) is deprecated and will be removed; use \(replacement)")
                return found
            }
            if let flag = flags[key] { return flag }
            if let old, let flag = flags[old] { return deprecated("--\(old)", "--\(key)", flag) }
            if let name = Self.environmentNames[key], let env = environment[name], !env.isEmpty { return env }
            if let old, let name = Self.environmentNames[key], let env = environment[Self.environmentName(ofDeprecated: old)], !env.isEmpty {
                return deprecated(Self.environmentName(ofDeprecated: old), name, env)
            }
            if let found = file[key] { return found }
            if let old, let found = file[old] { return deprecated("config key \(old)", key, found) }
            return nil
        }
        func int(_ key: String, _ fallback: Int, minimum: Int = 1) throws -> Int {
            guard let text = value(key) else { return fallback }
            guard let number = Int(text), number >= minimum else { throw DaemonError("\(key) must be an integer ≥ \(minimum), got \"\(text)\"") }
            return number
        }
        func duration(_ key: String, _ fallback: Duration) throws -> Duration {
            guard let text = value(key) else { return fallback }
            guard let parsed = Self.parseDuration(text) else {
                throw DaemonError("\(key) must be a duration such as 30s, 500ms or 5m, got \"\(text)\"")
            }
            return parsed
        }
        func flag(_ key: String) throws -> Bool {
            guard let text = value(key)?.lowercased() else { return false }
            switch text {
            case "1", "true", "yes", "on", "": return true
            case "0", "false", "no", "off": return false
            default: throw DaemonError("\(key) must be true or false, got \"\(text)\"")
            }
        }

        databaseURL = value("database-url")
        dataDirectory = value("data-dir") ?? dataDirectory
        schema = value("schema") ?? schema
        poolSize = try int("pool-size", poolSize)
        maxWaitQueue = try int("max-wait-queue", maxWaitQueue)
        groupCommitMax = try int("group-commit-max", groupCommitMax)
        groupCommitHold = try int("group-commit-hold", groupCommitHold, minimum: 0)
        inlineReadWait = try duration("inline-read-wait", inlineReadWait)
        inlineWriteWait = try duration("inline-write-wait", inlineWriteWait)
        statementTimeout = try duration("statement-timeout", statementTimeout)
        unixSocket = try flag("no-unix-socket") ? nil : (value("unix-socket") ?? unixSocket)
        if let address = value("tcp"), !(try flag("no-tcp")) {
            tcp = try Self.parseAddress(address)
        }
        tokenFile = value("token-file")
        insecureNoAuth = try flag("insecure-no-auth")
        maxFrameBytes = try int("max-frame-bytes", maxFrameBytes, minimum: 1024)
        maxPayloadBytes = try int("max-payload-bytes", maxPayloadBytes)
        maxInFlight = try int("max-in-flight", maxInFlight)
        maxConnections = try int("max-connections", maxConnections)
        requestTimeout = try duration("request-timeout", requestTimeout)
        idleTimeout = try duration("idle-timeout", idleTimeout)
        handshakeTimeout = try duration("handshake-timeout", handshakeTimeout)
        shutdownGrace = try duration("shutdown-grace", shutdownGrace)
        tlsCertificate = value("tls-cert")
        tlsKey = value("tls-key")
        tlsClientCA = value("tls-client-ca")
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw DaemonError("tls-cert and tls-key go together") }
        guard tlsClientCA == nil || tlsCertificate != nil else { throw DaemonError("tls-client-ca needs tls-cert and tls-key") }
        allowedUIDs = try value("allow-uids").map { try Self.parseIDs($0, kind: "user") }
        allowedGIDs = try value("allow-gids").map { try Self.parseIDs($0, kind: "group") }
        if let address = value("metrics") {
            metrics = try Self.parseAddress(address)
        }
        if let level = value("log-level") {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                throw DaemonError("log-level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            logLevel = parsed
        }
        self.deprecations = deprecations
    }

    /// True when no database is configured and the embedded development cluster is used.
    var usesEmbeddedDatabase: Bool { (databaseURL ?? "").isEmpty }

    func postgresConfiguration(embedded: String? = nil) throws -> PostgresConfiguration {
        guard let databaseURL = embedded ?? databaseURL, !databaseURL.isEmpty else {
            throw DaemonError("no database configured: pass --database-url or set STEPRUN_DATABASE_URL")
        }
        return PostgresConfiguration(
            connectionString: databaseURL, schema: schema, poolSize: poolSize, maxWaitQueue: maxWaitQueue,
            statementTimeout: statementTimeout, defaultTimeout: requestTimeout, groupCommitMax: groupCommitMax,
            inlineReadWait: inlineReadWait, inlineWriteWait: inlineWriteWait, groupCommitHold: groupCommitHold)
    }

    func serverConfiguration() throws -> ServerConfiguration {
        var token: String?
        if let tokenFile, tcp != nil {
            token = try Self.readToken(tokenFile)
        }
        var configuration = ServerConfiguration(
            unixSocketPath: unixSocket, tcp: tcp, tcpToken: token, allowInsecureTCP: insecureNoAuth,
            maxFrameBytes: maxFrameBytes, storeLimits: StoreLimits(maxPayloadBytes: maxPayloadBytes),
            maxInFlightPerConnection: maxInFlight, maxConnections: maxConnections,
            defaultRequestTimeout: requestTimeout, handshakeTimeout: handshakeTimeout, idleTimeout: idleTimeout,
            shutdownGracePeriod: shutdownGrace)
        configuration.tls = try tlsConfiguration()
        configuration.allowedPeerUIDs = allowedUIDs
        configuration.allowedPeerGIDs = allowedGIDs
        return configuration
    }

    /// TLS for the TCP listener from PEM files; with a client CA, clients must present a certificate it signed.
    func tlsConfiguration() throws -> TLSConfiguration? {
        guard let tlsCertificate, let tlsKey else { return nil }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(tlsCertificate).map { NIOSSLCertificateSource.certificate($0) }
            var configuration = TLSConfiguration.makeServerConfiguration(
                certificateChain: chain, privateKey: .privateKey(try NIOSSLPrivateKey(file: tlsKey, format: .pem)))
            configuration.minimumTLSVersion = .tlsv12
            if let tlsClientCA {
                configuration.certificateVerification = .noHostnameVerification
                configuration.trustRoots = .file(tlsClientCA)
            }
            return configuration
        } catch {
            throw DaemonError("cannot load the TLS certificate or key (\(tlsCertificate), \(tlsKey)): \(error)")
        }
    }

    /// A comma-separated list of numeric ids or user/group names.
    static func parseIDs(_ text: String, kind: String) throws -> Set<UInt32> {
        var ids = Set<UInt32>()
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            if let id = UInt32(item) {
                ids.insert(id)
            } else if kind == "user", let entry = getpwnam(item) {
                ids.insert(entry.pointee.pw_uid)
            } else if kind == "group", let entry = getgrnam(item) {
                ids.insert(entry.pointee.gr_gid)
            } else {
                throw DaemonError("unknown \(kind) \"\(item)\" in allow-\(kind == "user" ? "uids" : "gids")")
            }
        }
        return ids
    }

    /// Reads the TCP token, refusing a file anyone on the machine can read.
    static func readToken(_ path: String) throws -> String {
        let attributes: [FileAttributeKey: Any]
        do {
            attributes = try FileManager.default.attributesOfItem(atPath: path)
        } catch {
            throw DaemonError("cannot read token file \(path): \(error.localizedDescription)")
        }
        if let permissions = attributes[.posixPermissions] as? NSNumber, permissions.intValue & 0o004 != 0 {
            throw DaemonError("token file \(path) is world-readable; run `chmod o-r \(path)`")
        }
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw DaemonError("cannot read token file \(path)")
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw DaemonError("token file \(path) is empty") }
        return token
    }

    /// `host:port`, `[v6]:port` or `:port` (all interfaces).
    static func parseAddress(_ text: String) throws -> (host: String, port: Int) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            throw DaemonError("tcp must be HOST:PORT, got \"\(text)\"")
        }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return (host.isEmpty ? "0.0.0.0" : host, port)
    }

    /// `200us` (or `200µs`), `250ms`, `30s`, `5m`, `1h`, or a bare number of seconds.
    static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("us", 0.000_001), ("µs", 0.000_001), ("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let number = Double(text.dropLast(suffix.count)), number >= 0 else { return nil }
            return .microseconds(Int64((number * scale * 1_000_000).rounded()))
        }
        guard let seconds = Double(text), seconds >= 0 else { return nil }
        return .microseconds(Int64((seconds * 1_000_000).rounded()))
    }
}
