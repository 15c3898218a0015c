import Foundation
import Logging
import StepRunCore

/// What a migration run found and did.
public struct MigrationReport: Sendable, Hashable {
    /// The schema version before the run.
    public var from: Int
    /// The schema version after the run.
    public var to: Int
}

/// Brings the schema up to date.
public enum SchemaMigrator {
    /// Applies pending migrations under an advisory lock, so several daemons starting at once are safe.
    ///
    /// Fails with `StepRunError.failedPrecondition` if the database holds a newer schema than this
    /// build knows (a newer daemon migrated it): running old code against it is not safe.
    @discardableResult
    public static func migrate(pool: PostgresPool, logger: Logger) async throws -> MigrationReport {
        try await migrate(pool: pool, logger: logger, through: Migrations.latestVersion)
    }

    /// Applies pending migrations up to `version` only (tests of an upgrade from an older schema).
    @discardableResult
    static func migrate(pool: PostgresPool, logger: Logger, through version: Int) async throws -> MigrationReport {
        let schema = try SchemaName(pool.configuration.schema)
        let report = try await pool.withConnection(deadline: .now.advanced(by: .seconds(600))) { connection throws(StepRunError) in
            try migrate(connection: connection, schema: schema, through: version)
        }
        if report.from != report.to {
            logger.info("schema migrated", metadata: ["schema": "\(schema.raw)", "from": "\(report.from)", "to": "\(report.to)"])
        } else {
            logger.debug("schema up to date", metadata: ["schema": "\(schema.raw)", "version": "\(report.to)"])
        }
        return report
    }

    private static func migrate(connection: PGConnection, schema: SchemaName, through version: Int) throws(StepRunError) -> MigrationReport {
        let lockKey = "hashtext('steprun.migrate.' || \(SchemaName.literal(schema.raw)))"
        do {
            // A session-level lock: held across the per-migration transactions below.
            try connection.simpleQuery("SELECT pg_advisory_lock(\(lockKey))")
            defer { _ = try? connection.simpleQuery("SELECT pg_advisory_unlock(\(lockKey))") }
            try connection.simpleQuery("""
                CREATE SCHEMA IF NOT EXISTS \(schema.quoted);
                CREATE TABLE IF NOT EXISTS \(schema.quoted).schema_migrations (
                    version    integer     PRIMARY KEY,
                    name       text        NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                );
                """)
            let rows = try connection.simpleQuery("SELECT coalesce(max(version), 0) FROM \(schema.quoted).schema_migrations")
            let current = Int(rows[0, 0] ?? "0") ?? 0
            guard current <= Migrations.latestVersion else {
                throw StepRunError.failedPrecondition(
                    "schema \(schema.raw) is at version \(current), newer than this steprund knows (\(Migrations.latestVersion)); upgrade steprund")
            }
            for migration in Migrations.all where migration.version > current && migration.version <= version {
                let sql = migration.sql.replacingOccurrences(of: "{schema}", with: schema.quoted)
                do {
                    try connection.simpleQuery("""
                        BEGIN;
                        \(sql);
                        INSERT INTO \(schema.quoted).schema_migrations (version, name)
                            VALUES (\(migration.version), \(SchemaName.literal(migration.name)));
                        COMMIT;
                        """)
                } catch {
                    _ = try? connection.simpleQuery("ROLLBACK")
                    throw error
                }
            }
            return MigrationReport(from: current, to: max(current, min(version, Migrations.latestVersion)))
        } catch let error as PGError {
            throw error.storeError(context: "migrating schema \(schema.raw)")
        } catch let error as StepRunError {
            throw error
        } catch {
            throw .internal("migration failed: \(error)")
        }
    }
}

/// A Postgres schema name, quoted for use in SQL.
struct SchemaName: Sendable {
    let raw: String

    init(unchecked raw: String) {
        self.raw = raw
    }

    /// Accepts only plain lower-case identifiers, so the name never needs case-sensitive quoting surprises.
    init(_ raw: String) throws(StepRunError) {
        let allowed = raw.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "_")
        }
        guard allowed, let first = raw.utf8.first, !(first >= UInt8(ascii: "0") && first <= UInt8(ascii: "9")),
            raw.utf8.count <= 63
        else {
            throw .invalidArgument(
                field: "schema", message: "schema name \"\(raw)\" must be 1–63 characters of a–z, 0–9 and _, not starting with a digit")
        }
        self.raw = raw
    }

    /// The name as a quoted SQL identifier (safe even for a name that skipped validation).
    var quoted: String { "\"" + raw.replacingOccurrences(of: "\"", with: "\"\"") + "\"" }

    /// A string as a quoted SQL literal.
    static func literal(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "''") + "'"
    }
}
