#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import ServiceLifecycle

/// A private Postgres cluster for development, used when no database is configured: created on
/// first use under `<directory>/postgres`, reachable only through a Unix socket there, started
/// with the daemon and stopped with it.
struct EmbeddedPostgres: Sendable {
    /// Absolute: Postgres resolves relative paths against its data directory, not ours.
    let directory: String
    let logger: Logger

    init(directory: String, logger: Logger) {
        let absolute = directory.hasPrefix("/") ? directory : FileManager.default.currentDirectoryPath + "/" + directory
        self.directory = URL(fileURLWithPath: absolute).standardizedFileURL.path
        self.logger = logger
    }

    private var dataDirectory: String { directory + "/postgres/data" }
    private var socketDirectory: String { directory + "/postgres" }
    private static let port = 5432

    /// The libpq conninfo for the cluster.
    var connectionString: String {
        "host=\(socketDirectory) port=\(Self.port) user=postgres dbname=postgres"
    }

    /// Creates the cluster if needed and starts it; returns whether this call started it.
    func start() async throws -> Bool {
        let binaries = try Self.binaryDirectory()
        let asRoot = getuid() == 0
        try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
        if asRoot {
            // Postgres refuses to run as root: the cluster belongs to the `postgres` user.
            try await Self.run("chown postgres:postgres \(Self.quote(socketDirectory))")
        }
        let prefix = asRoot ? "runuser -u postgres -- " : ""
        if !FileManager.default.fileExists(atPath: dataDirectory + "/PG_VERSION") {
            logger.info("creating the embedded development database", metadata: ["path": "\(dataDirectory)"])
            try await Self.run(
                "\(prefix)\(Self.quote(binaries + "/initdb")) -D \(Self.quote(dataDirectory)) -A trust -U postgres -E UTF8 --no-instructions"
                    + " > \(Self.quote(socketDirectory + "/initdb.log")) 2>&1")
        }
        let pgctl = "\(prefix)\(Self.quote(binaries + "/pg_ctl")) -D \(Self.quote(dataDirectory))"
        if (try? await Self.run("\(pgctl) status > /dev/null 2>&1")) != nil {
            logger.info("embedded development database already running; reusing it", metadata: ["path": "\(dataDirectory)"])
            return false
        }
        let options = "-p \(Self.port) -k \(socketDirectory) -c listen_addresses=''"
        try await Self.run("\(pgctl) -l \(Self.quote(socketDirectory + "/postgres.log")) -w -t 60 -o \(Self.quote(options)) start > /dev/null")
        logger.info("embedded development database started", metadata: ["socket": "\(socketDirectory)", "log": "\(socketDirectory)/postgres.log"])
        return true
    }

    func stop() async {
        guard let binaries = try? Self.binaryDirectory() else { return }
        let prefix = getuid() == 0 ? "runuser -u postgres -- " : ""
        _ = try? await Self.run("\(prefix)\(Self.quote(binaries + "/pg_ctl")) -D \(Self.quote(dataDirectory)) -m fast -w stop > /dev/null 2>&1")
        logger.info("embedded development database stopped")
    }

    static func binaryDirectory() throws -> String {
        if let configured = ProcessInfo.processInfo.environment["PG_BINDIR"], !configured.isEmpty { return configured }
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        guard let newest = versions.compactMap(Int.init).max() else {
            throw DaemonError("no database configured and no Postgres server installed for the embedded default (apt-get install postgresql), or set --database-url")
        }
        return "\(root)/\(newest)/bin"
    }

    private static func quote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Runs a shell command on a thread of its own (it blocks for seconds); throws if it fails.
    private static func run(_ command: String) async throws {
        let status: Int32 = await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: system(command)) }.start()
        }
        guard status == 0 else { throw DaemonError("command failed (\(status)): \(command)") }
    }
}

/// Stops the embedded cluster after everything else has shut down.
struct EmbeddedPostgresService: Service {
    let postgres: EmbeddedPostgres
    let startedHere: Bool

    func run() async throws {
        try? await gracefulShutdown()
        if startedHere { await postgres.stop() }
    }
}
