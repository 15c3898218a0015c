import Foundation
import StepRunCore

/// The Postgres implementation of every store operation.
///
/// Each call is validated before any SQL runs, then executed on a pooled connection's thread as a
/// single statement (or, for `transaction`, one database transaction). Errors are `StepRunError`.
///
/// It is an `InlineCapableStore`: `startInline` lets a quick call run on the caller's thread over
/// an idle connection when the pool is quiet (`InlineCall`). Its pool's threads start when the
/// pool's service runs (`PostgresPool.run`) or at the first call.
public final class StepRunRepository: InlineCapableStore {
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
        _ request: StoreRequest, deadline: ContinuousClock.Instant,
        completion: @escaping @Sendable (Result<StoreResult, StepRunError>) -> Void
    ) -> StoreCallHandle {
        start(request, deadline: deadline, inline: false, completion: completion)
    }

    public func startInline(
        _ request: StoreRequest, deadline: ContinuousClock.Instant,
        completion: @escaping @Sendable (Result<StoreResult, StepRunError>) -> Void
    ) -> StoreCallHandle {
        start(request, deadline: deadline, inline: true, completion: completion)
    }

    private func start(
        _ request: StoreRequest, deadline: ContinuousClock.Instant, inline: Bool,
        completion: @escaping @Sendable (Result<StoreResult, StepRunError>) -> Void
    ) -> StoreCallHandle {
        do {
            try request.validate(limits: limits)
        } catch {
            completion(.failure(error))
            return StoreCallHandle {}
        }
        let id = pool.start(request, sql: sql, deadline: deadline, inline: inline, completion: completion)
        return StoreCallHandle { [pool] in pool.cancel(id) }
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
