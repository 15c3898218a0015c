import Logging
import StepRunCore

/// One libpq connection that runs the repository's statements synchronously on the caller's thread.
///
/// This is the daemon's data path with everything in front of it removed — no pool, no queue, no
/// thread hop, no wire protocol — so `steprun-bench` can measure what the same SQL costs when a
/// client talks to Postgres itself. Each call validates the request exactly as
/// `StepRunRepository` does and then runs the same `StoreOperations` code.
///
/// Not thread-safe and not `Sendable`: create it on the thread that uses it and keep it there.
/// A lost connection is not re-established; later calls fail with `UNAVAILABLE`.
public final class DirectConnection {
    public let configuration: PostgresConfiguration
    public let limits: StoreLimits
    private let connection: PGConnection
    private let sql: StepRunSQL

    /// Opens the connection (blocking, bounded by the configuration's connect timeout).
    ///
    /// Throws `StepRunError.unavailable` when Postgres cannot be reached and `.invalidArgument` for
    /// a schema name the daemon would refuse. Does not migrate: see `SchemaMigrator.migrate(configuration:)`.
    public init(configuration: PostgresConfiguration, limits: StoreLimits = .default) throws(StepRunError) {
        let schema = try SchemaName(configuration.schema)
        self.configuration = configuration
        self.limits = limits
        self.sql = StepRunSQL(schema: schema)
        do {
            self.connection = try PGConnection(parameters: configuration.connectionParameters)
        } catch {
            throw error.storeError(context: "connecting")
        }
    }

    /// Validates and performs one operation, blocking until Postgres has answered (and committed).
    public func perform(_ request: StoreRequest) throws(StepRunError) -> StoreResult {
        try request.validate(limits: limits)
        return try StoreOperations(connection: connection, sql: sql).perform(request)
    }

    /// Closes the connection; later calls fail with `UNAVAILABLE`. Safe to call twice.
    public func close() {
        connection.close()
    }
}

extension SchemaMigrator {
    /// Applies pending migrations over a short-lived connection of its own, for tools that have no pool.
    @discardableResult
    public static func migrate(configuration: PostgresConfiguration) async throws -> MigrationReport {
        var single = configuration
        single.poolSize = 1
        let logger = Logger(label: "steprun.migrate", factory: { _ in SwiftLogNoOpLogHandler() })
        let pool = PostgresPool(configuration: single, logger: logger)
        do {
            let report = try await migrate(pool: pool, logger: logger)
            await pool.shutdown()
            return report
        } catch {
            await pool.shutdown()
            throw error
        }
    }
}
