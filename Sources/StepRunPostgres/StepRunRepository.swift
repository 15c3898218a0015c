import Foundation
import StepRunCore

/// The Postgres implementation of every store operation.
///
/// Each call is validated before any SQL runs, then executed on a pooled connection's thread as a
/// single statement (or, for `transaction`, one database transaction). Errors are `StepRunError`.
public final class StepRunRepository: StepRunStore {
    public let pool: PostgresPool
    public let limits: StoreLimits
    private let sql: StepRunSQL

    public init(pool: PostgresPool, limits: StoreLimits = .default) {
        self.pool = pool
        self.limits = limits
        self.sql = StepRunSQL(schema: SchemaName(unchecked: pool.configuration.schema), maxResponseBytes: limits.maxResponseBytes)
    }

    public func perform(_ request: StoreRequest, deadline: ContinuousClock.Instant?) async throws -> StoreResult {
        try request.validate(limits: limits)
        return try await pool.perform(request, sql: sql, deadline: deadline)
    }

    public func start(
        _ request: StoreRequest, deadline: ContinuousClock.Instant, mayBlockCaller: Bool,
        completion: @escaping @Sendable (Result<StoreResult, StepRunError>) -> Void
    ) -> StoreCallHandle {
        do {
            try request.validate(limits: limits)
        } catch {
            completion(.failure(error))
            return StoreCallHandle {}
        }
        let ticket = pool.start(request, sql: sql, deadline: deadline, mayRunInline: mayBlockCaller, completion: completion)
        return StoreCallHandle { [pool] in pool.cancel(ticket) }
    }

    /// Round trip to the database through the pool; returns its latency.
    ///
    /// Throws `StepRunError.unavailable` when the database cannot be reached (or is read-only) or
    /// the pool cannot run the query in time (`PostgresPool.probeHealth`: it answers before
    /// `deadline` even while every connection is blocked), and an error if the schema has not
    /// been migrated.
    public func checkHealth(deadline: ContinuousClock.Instant?) async throws -> Duration {
        let statement = sql.health
        return try await pool.probeHealth(deadline: deadline) { connection throws(StepRunError) in
            let started = ContinuousClock.now
            do throws(PGError) {
                _ = try connection.execute(statement, [PGParameter?]())
            } catch {
                throw error.storeError(context: "checking health")
            }
            return ContinuousClock.now - started
        }
    }
}
