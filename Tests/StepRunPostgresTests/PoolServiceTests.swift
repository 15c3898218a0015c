import StepRunCore
@testable import StepRunPostgres
import StepRunTesting
import Testing

/// The pool as a service (`PostgresPool.run`): its threads start when it runs, and it closes when
/// the run ends.
@Suite("Connection pool as a service")
struct PoolServiceTests {
    @Test("no thread or connection before the service runs; running it connects every worker")
    func runStartsTheWorkers() async throws {
        let pool = PostgresPool(configuration: PostgresConfiguration(connectionString: try TestDatabase.url, poolSize: 2), logger: TestDatabase.logger)
        try await Task.sleep(for: .milliseconds(50))
        #expect(pool.statistics.connected == 0 && pool.statistics.idle == 0)
        let service = Task { try await pool.run() }
        #expect(await eventually { pool.statistics.connected == 2 && pool.statistics.idle == 2 })
        service.cancel()  // as a graceful shutdown: the run shuts the pool down and returns
        try await service.value
        #expect(pool.statistics.connected == 0)
        let error = await storeError { try await pool.withConnection(deadline: nil) { _ in } }
        #expect(error?.code == .unavailable)
    }

    @Test("a pool shut down before it ever ran refuses calls UNAVAILABLE and starts no worker for them")
    func shutDownBeforeRunning() async throws {
        let pool = PostgresPool(configuration: PostgresConfiguration(connectionString: try TestDatabase.url, poolSize: 2), logger: TestDatabase.logger)
        await pool.shutdown()
        let error = await storeError { try await pool.withConnection(deadline: nil) { _ in } }
        #expect(error?.code == .unavailable)
        #expect(pool.statistics.connected == 0 && pool.statistics.idle == 0 && pool.statistics.busy == 0)
    }
}
