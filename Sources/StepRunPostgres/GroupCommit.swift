import StepRunCore

/// Runs several queued write calls in one transaction, so one commit (one WAL flush) serves them all.
///
/// Every call's outcome — success or an expected failure such as a stale step run — is held until
/// COMMIT succeeds, so nobody is told a write happened before it is durable. If the transaction
/// breaks for an unexpected reason (an SQL error, a deadlock with another group, a failed COMMIT),
/// it is rolled back and the calls are run again one by one, so only the call that really fails
/// sees an error.
///
/// Two groups on different connections can lock rows in opposite orders. Postgres would break such a
/// deadlock only after `deadlock_timeout` (1 s by default), so a group runs with a short
/// `lock_timeout` instead: a group that has to wait for a lock gives up quickly and falls back to
/// one-by-one, where each call is a single statement that cannot deadlock with itself. Calls are
/// also applied in a stable key order (run id, else step run / attempt id), which makes such cycles
/// rarer; the order among concurrent callers was never defined, so nothing observable changes.
enum GroupCommit {
    /// How long a grouped statement may wait for a row lock before the group falls back.
    static let lockTimeout = "100ms"

    /// Returns true when the group committed together; false when it fell back to one by one.
    ///
    /// The whole group — BEGIN, the calls' statements, COMMIT — goes to Postgres as one libpq
    /// pipeline: one round trip, however many calls. A call whose statement raced a concurrent
    /// writer (it changed nothing; see `StoreOperations.decode`) runs again by itself after COMMIT.
    static func run(_ unordered: [PoolJob], on connection: PGConnection) -> Bool {
        let jobs = unordered.sorted { $0.lockOrderKey < $1.lockOrderKey }
        var calls: [(job: PoolJob, request: StoreRequest, deliver: @Sendable (Result<StoreResult, StepRunError>) -> Void)] = []
        calls.reserveCapacity(jobs.count)
        var steps: [PGConnection.PipelineStep] = [.plain("BEGIN"), .plain("SET LOCAL lock_timeout = '\(lockTimeout)'")]
        steps.reserveCapacity(jobs.count + 3)
        for job in jobs {
            guard case .store(let request, let sql, let deliver) = job.work else {
                preconditionFailure("only store calls are grouped")
            }
            if let answer = StoreOperations.answerWithoutSQL(request) {
                deliver(.success(answer))
                continue
            }
            let statement = StoreOperations.statement(for: request, sql: sql)
            steps.append(.prepared(statement.prepared, statement.parameters))
            calls.append((job, request, deliver))
        }
        guard !calls.isEmpty else { return true }
        steps.append(.plain("COMMIT"))

        let outcomes: [Result<PGRows, PGError>]?
        do {
            outcomes = try connection.pipeline(steps)
        } catch {
            // The connection failed with the group in flight: COMMIT may or may not have happened.
            for call in calls {
                call.job.fail(.unavailable("the database connection was lost during the call; it may or may not have been applied"))
            }
            return false
        }
        if let outcomes, connection.isIdle, outcomes.allSatisfy({ if case .success = $0 { true } else { false } }) {
            var again: [PoolJob] = []
            for (index, call) in calls.enumerated() {
                guard case .success(let rows) = outcomes[index + 2] else { continue }
                do throws(StepRunError) {
                    if let result = try StoreOperations.decode(call.request, rows) {
                        call.deliver(.success(result))
                    } else {
                        again.append(call.job)
                    }
                } catch {
                    call.deliver(.failure(error))
                }
            }
            for job in again { job.runAlone(on: connection) }
            return true
        }
        // Nothing of the group was applied. Each call gets its own chance, on a working connection.
        if connection.isInTransaction {
            _ = try? connection.simpleQuery("ROLLBACK")
        }
        for call in calls {
            if connection.isIdle {
                call.job.runAlone(on: connection)
            } else {
                call.job.fail(.unavailable("the database connection was lost; the call was not applied"))
            }
        }
        return false
    }
}
