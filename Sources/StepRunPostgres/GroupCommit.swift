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
    static func run(_ unordered: [PoolJob], on connection: PGConnection) -> Bool {
        let jobs = unordered.sorted { $0.lockOrderKey < $1.lockOrderKey }
        var outcomes: [(deliver: @Sendable (Result<StoreResult, StepRunError>) -> Void, outcome: Result<StoreResult, StepRunError>)] = []
        outcomes.reserveCapacity(jobs.count)
        let committed: Bool = {
            guard (try? connection.simpleQuery("BEGIN; SET LOCAL lock_timeout = '\(lockTimeout)'")) != nil else { return false }
            for job in jobs {
                guard case .store(let request, let sql, let deliver) = job.work else { return false }
                let outcome = Result { () throws(StepRunError) in try StoreOperations(connection: connection, sql: sql).perform(request) }
                guard connection.isInHealthyTransaction else {
                    _ = try? connection.simpleQuery("ROLLBACK")
                    return false
                }
                outcomes.append((deliver, outcome))
            }
            guard (try? connection.simpleQuery("COMMIT")) != nil, connection.isIdle else {
                _ = try? connection.simpleQuery("ROLLBACK")
                return false
            }
            return true
        }()
        if committed {
            for (deliver, outcome) in outcomes { deliver(outcome) }
            return true
        }
        // Nothing of the group was applied. Each call gets its own chance, on a working connection.
        for job in jobs {
            if connection.isIdle {
                job.runAlone(on: connection)
            } else {
                job.fail(.unavailable("the database connection was lost; the call was not applied"))
            }
        }
        return false
    }
}
