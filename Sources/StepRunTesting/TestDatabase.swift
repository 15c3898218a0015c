import Foundation
import Logging
import StepRunCore
import StepRunPostgres

/// The database the suites run against, from `STEPRUN_TEST_DATABASE_URL` (`make test` and
/// `scripts/with-test-postgres` set it), and the one place a test helper builds a repository.
public enum TestDatabase {
    public static var url: String {
        get throws {
            guard let url = ProcessInfo.processInfo.environment["STEPRUN_TEST_DATABASE_URL"], !url.isEmpty else {
                throw StepRunError.failedPrecondition(
                    "STEPRUN_TEST_DATABASE_URL is not set: run `make test`, or point it at a database you can write to")
            }
            return url
        }
    }

    public static let logger: Logger = {
        var logger = Logger(label: "steprun.tests")
        logger.logLevel = .warning
        return logger
    }()

    /// A repository over a pool of its own on `configuration`, its schema migrated. Every test
    /// helper that needs a repository makes it here, so how a repository starts is written once.
    public static func makeRepository(
        _ configuration: PostgresConfiguration, limits: StoreLimits = .default, logger: Logger = TestDatabase.logger
    ) async throws -> StepRunRepository {
        let pool = PostgresPool(configuration: configuration, logger: logger)
        try await SchemaMigrator.migrate(pool: pool, logger: logger)
        return StepRunRepository(pool: pool, limits: limits)
    }

    private static let setup = Task<StepRunRepository, any Error> {
        try await makeRepository(PostgresConfiguration(connectionString: try url, schema: "steprun", poolSize: 16))
    }

    /// One migrated repository shared by every test of a suite; tests isolate themselves with fresh run ids.
    public static func repository() async throws -> StepRunRepository {
        try await setup.value
    }

    /// A path in the temporary directory, unique to this call: `name-xxxxxxxx` (short, as Unix
    /// socket paths must be).
    public static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("\(name)-\(UUID().uuidString.prefix(8))").path
    }
}
