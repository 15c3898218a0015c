import ArgumentParser

/// The flags shared by `serve` and `migrate`. Each is optional so that an absent flag falls through
/// to the environment and the config file (see docs/CONFIGURATION.md).
struct DaemonOptions: ParsableArguments {
    @Option(help: "Config file of `key = value` lines (env STEPRUN_CONFIG).")
    var config: String?

    @Option(name: .customLong("database-url"), help: "libpq URL or conninfo of the database (env STEPRUN_DATABASE_URL).")
    var databaseURL: String?

    @Option(name: .customLong("data-dir"), help: "Directory of the embedded development database, used when no database URL is set (default .steprun).")
    var dataDir: String?

    @Option(help: "Postgres schema holding steprund's tables (default steprun).")
    var schema: String?

    @Option(name: .customLong("pool-size"), help: "Database connections (default 8).")
    var poolSize: String?

    @Option(name: .customLong("max-wait-queue"), help: "Calls that may wait for a database connection (default 4096).")
    var maxWaitQueue: String?

    @Option(name: .customLong("group-commit-max"), help: "Most queued writes committed in one transaction; 1 turns group commit off (default 64).")
    var groupCommitMax: String?

    @Option(
        name: .customLong("group-commit-hold"),
        help: "A group with at least this many begin/complete calls with payloads up to 4 KiB holds the next group back until it has committed, so groups grow under load; 0 turns it off (default 8).")
    var groupCommitHold: String?

    /// The old spelling of `--group-commit-hold`; works, with a deprecation warning.
    @Option(name: .customLong("group-hold"), help: .hidden)
    var groupHold: String?

    @Option(
        name: .customLong("inline-read-wait"),
        help: "How long a read may run on the event loop when the pool is quiet before a pool thread takes it over, e.g. 200us; 0 turns it off (default 200us).")
    var inlineReadWait: String?

    @Option(
        name: .customLong("inline-write-wait"),
        help: "The same for begin_step and complete_step calls with payloads up to 4 KiB, commit included, e.g. 200us; 0 turns it off (default 200us).")
    var inlineWriteWait: String?

    @Option(name: .customLong("statement-timeout"), help: "Postgres statement_timeout, e.g. 30s (default 30s).")
    var statementTimeout: String?

    @Option(name: .customLong("unix-socket"), help: "Unix socket path (default \(Settings.defaultUnixSocket)).")
    var unixSocket: String?

    @Flag(name: .customLong("no-unix-socket"), help: "Do not listen on a Unix socket.")
    var noUnixSocket = false

    @Option(help: "Listen on TCP at HOST:PORT (default: off).")
    var tcp: String?

    @Flag(name: .customLong("no-tcp"), help: "Do not listen on TCP, whatever the environment or config file say.")
    var noTCP = false

    @Option(name: .customLong("token-file"), help: "File holding the token TCP clients must present; must not be world-readable.")
    var tokenFile: String?

    @Flag(name: .customLong("insecure-no-auth"), help: "Accept TCP clients without a token (trusted networks only).")
    var insecureNoAuth = false

    @Option(name: .customLong("max-frame-bytes"), help: "Largest frame accepted or sent (default 8388608); must carry the largest row max-payload-bytes allows.")
    var maxFrameBytes: String?

    @Option(name: .customLong("max-payload-bytes"), help: "Largest JSON payload (default 1048576).")
    var maxPayloadBytes: String?

    @Option(name: .customLong("max-in-flight"), help: "Requests in flight per connection (default 128).")
    var maxInFlight: String?

    @Option(name: .customLong("max-connections"), help: "Open client connections (default 4096).")
    var maxConnections: String?

    @Option(name: .customLong("request-timeout"), help: "Deadline of requests that set none (default 30s).")
    var requestTimeout: String?

    @Option(name: .customLong("idle-timeout"), help: "Close connections idle this long; 0 = never (default 300s).")
    var idleTimeout: String?

    @Option(name: .customLong("handshake-timeout"), help: "Time a new connection has to send its Hello (default 10s).")
    var handshakeTimeout: String?

    @Option(name: .customLong("shutdown-grace"), help: "Time in-flight requests get on shutdown (default 30s).")
    var shutdownGrace: String?

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain: serve TCP over TLS (with --tls-key).")
    var tlsCert: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key for --tls-cert.")
    var tlsKey: String?

    @Option(name: .customLong("tls-client-ca"), help: "PEM CA bundle: require TCP clients to present a certificate it signed.")
    var tlsClientCA: String?

    @Option(name: .customLong("allow-uids"), help: "Unix socket: only these users (ids or names, comma-separated) may connect.")
    var allowUIDs: String?

    @Option(name: .customLong("allow-gids"), help: "Unix socket: only these groups (ids or names, comma-separated) may connect.")
    var allowGIDs: String?

    @Option(help: "Serve Prometheus metrics over HTTP at HOST:PORT, e.g. 127.0.0.1:9433 (default: off).")
    var metrics: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?

    /// The flags that were given, keyed like the config file.
    var given: [String: String] {
        var flags: [String: String] = [:]
        let options: [(String, String?)] = [
            ("config", config), ("database-url", databaseURL), ("data-dir", dataDir), ("schema", schema), ("pool-size", poolSize),
            ("max-wait-queue", maxWaitQueue), ("group-commit-max", groupCommitMax), ("group-commit-hold", groupCommitHold), ("group-hold", groupHold), ("inline-read-wait", inlineReadWait), ("inline-write-wait", inlineWriteWait), ("statement-timeout", statementTimeout), ("unix-socket", unixSocket),
            ("tcp", tcp), ("token-file", tokenFile), ("max-frame-bytes", maxFrameBytes),
            ("max-payload-bytes", maxPayloadBytes), ("max-in-flight", maxInFlight), ("max-connections", maxConnections),
            ("request-timeout", requestTimeout), ("idle-timeout", idleTimeout), ("handshake-timeout", handshakeTimeout), ("shutdown-grace", shutdownGrace),
            ("log-level", logLevel), ("metrics", metrics),
            ("tls-cert", tlsCert), ("tls-key", tlsKey), ("tls-client-ca", tlsClientCA), ("allow-uids", allowUIDs),
            ("allow-gids", allowGIDs),
        ]
        for case (let key, let value?) in options { flags[key] = value }
        if noUnixSocket { flags["no-unix-socket"] = "true" }
        if noTCP { flags["no-tcp"] = "true" }
        if insecureNoAuth { flags["insecure-no-auth"] = "true" }
        return flags
    }

    func settings() throws -> Settings {
        try Settings(flags: given)
    }
}
