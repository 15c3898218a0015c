import Foundation

/// Every statement the repository runs, with the schema name filled in. A class: it travels with
/// every queued call, and copying ~50 strings per call showed up in profiles as reference counting.
///
/// Each operation is a single statement, so it is one round trip and atomic on its own. Expected
/// outcomes come back as rows tagged by a leading `outcome` column ('execute', 'skip', 'ok',
/// 'stale', 'exists') rather than as SQL errors, so statements can also run inside a larger
/// transaction without aborting it.
final class StepRunSQL: Sendable {
    /// Step-run columns in the order `RowDecoding` reads them.
    static func stepRunColumns(_ table: String = "") -> String {
        let t = table.isEmpty ? "" : table + "."
        return """
            \(t)id, \(t)run_id, \(t)step, \(t)status, \(t)input, \(t)output, \(t)last_error, \(t)recovery, \
            \(t)resume, \(t)manual, \(micros("\(t)inserted_at")), \(micros("\(t)updated_at")), \(micros("\(t)completed_at"))
            """
    }

    /// Attempt columns in the order `RowDecoding` reads them.
    static func attemptColumns(_ table: String = "") -> String {
        let t = table.isEmpty ? "" : table + "."
        return """
            \(t)id, \(t)step_run_id, \(t)attempt_number, \(t)status, \(t)error, \
            \(micros("\(t)inserted_at")), \(micros("\(t)updated_at"))
            """
    }

    private static func micros(_ column: String) -> String {
        "(extract(epoch FROM \(column)) * 1000000)::int8"
    }

    let beginStep: PreparedStatement
    /// begin_step for several distinct (run_id, step) at once; rows carry the call's ordinal.
    let beginSteps: PreparedStatement
    /// complete_step for several distinct step runs at once; rows carry the call's ordinal.
    let completeSteps: PreparedStatement
    let scheduleStep: PreparedStatement
    let scheduleSteps: PreparedStatement
    let deletePendingSteps: PreparedStatement
    let completeStep: PreparedStatement
    let completeManualStep: PreparedStatement
    let failStep: PreparedStatement
    let persistPauseResume: PreparedStatement
    let persistApprovalResume: PreparedStatement
    let recordFailureRecovery: PreparedStatement
    let updateRecovery: PreparedStatement
    let getStepRun: PreparedStatement
    let beginAttempt: PreparedStatement
    let completeAttempt: PreparedStatement
    let failAttempt: PreparedStatement
    let recordAttempt: PreparedStatement
    let attemptCount: PreparedStatement
    let latestAttempt: PreparedStatement
    let purgeRun: PreparedStatement
    /// The paged lists.
    let lists: ListSQL
    let health: PreparedStatement
    /// The most one response may carry (`StoreLimits.maxResponseBytes`); it travels here because
    /// this object already goes with every call to the connection that runs it.
    let maxResponseBytes: Int?

    init(schema: SchemaName, maxResponseBytes: Int? = nil) {
        self.maxResponseBytes = maxResponseBytes
        let runs = "\(schema.quoted).step_runs"
        let attempts = "\(schema.quoted).step_attempts"
        let cols = Self.stepRunColumns()
        let attemptCols = Self.attemptColumns()
        func statement(_ name: String, _ sql: String) -> PreparedStatement {
            PreparedStatement(name: "steprun_\(name)", sql: sql)
        }

        /// A fenced update of a step run: changes the row only while it is in `fence`.
        func fenced(_ name: String, fence: String, set assignments: String) -> PreparedStatement {
            statement(name, """
                WITH updated AS (
                    UPDATE \(runs) SET \(assignments), updated_at = clock_timestamp()
                    WHERE id = $1 AND status = '\(fence)'
                    RETURNING \(cols)
                )
                SELECT 'ok', * FROM updated
                UNION ALL
                SELECT 'stale', \(cols) FROM \(runs) WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM updated)
                """)
        }

        /// A fenced update of a running attempt.
        func fencedAttempt(_ name: String, set assignments: String) -> PreparedStatement {
            statement(name, """
                WITH updated AS (
                    UPDATE \(attempts) SET \(assignments), updated_at = clock_timestamp()
                    WHERE id = $1 AND status = 'running'
                    RETURNING \(attemptCols)
                )
                SELECT 'ok', * FROM updated
                UNION ALL
                SELECT 'stale', \(attemptCols) FROM \(attempts) WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM updated)
                """)
        }

        // The claim rule of begin_step (single and batched): a pending or failed step is claimed
        // (a failed one with the new input and recovery); a running or completed one is left alone.
        let claimOnConflict = """
            ON CONFLICT (run_id, step) DO UPDATE SET
                status = 'running',
                input = CASE WHEN s.status = 'failed' THEN excluded.input ELSE s.input END,
                recovery = CASE WHEN s.status = 'failed' THEN excluded.recovery ELSE s.recovery END,
                output = NULL, resume = NULL, last_error = NULL,
                updated_at = clock_timestamp()
            WHERE s.status IN ('pending', 'failed')
            RETURNING \(Self.stepRunColumns("s"))
            """
        /// complete_step's change (single and batched), given the expression for the output.
        func completion(output: String) -> String {
            "status = 'completed', output = \(output), completed_at = clock_timestamp(), manual = NULL, resume = NULL, last_error = NULL"
        }

        // $1 id, $2 run_id, $3 step, $4 input, $5 recovery
        beginStep = statement("begin_step", """
            WITH claimed AS (
                INSERT INTO \(runs) AS s (id, run_id, step, status, input, recovery, inserted_at, updated_at)
                VALUES ($1, $2, $3, 'running', $4, $5, clock_timestamp(), clock_timestamp())
                \(claimOnConflict)
            )
            SELECT 'execute', * FROM claimed
            UNION ALL
            SELECT 'skip', \(cols) FROM \(runs)
            WHERE run_id = $2 AND step = $3 AND NOT EXISTS (SELECT 1 FROM claimed)
            """)
        // The batched forms for group commit: element k of the arrays is call k (1-based `ord`), and
        // every row comes back tagged with it — the single statement's row with `ord` after the
        // outcome. Keys must be distinct within one batch (a row is claimed or updated at most once).
        // Rows are only ever reached through their unique index: the skip/stale reads are LATERAL
        // lookups behind an OFFSET 0 fence, so no plan can turn them into a scan of the whole table.
        // $1 ids, $2 run_ids, $3 steps, $4 inputs, $5 recoveries (binary arrays, `PGParameter`)
        beginSteps = statement("begin_steps", """
            WITH e AS (
                SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::jsonb[], $5::jsonb[])
                    WITH ORDINALITY AS e(id, run_id, step, input, recovery, ord)
            ), claimed AS (
                INSERT INTO \(runs) AS s (id, run_id, step, status, input, recovery, inserted_at, updated_at)
                SELECT id, run_id, step, 'running', input, recovery, clock_timestamp(), clock_timestamp() FROM e ORDER BY ord
                \(claimOnConflict)
            )
            SELECT 'execute', e.ord, claimed.* FROM claimed JOIN e ON e.run_id = claimed.run_id AND e.step = claimed.step
            UNION ALL
            SELECT 'skip', e.ord, current.* FROM e CROSS JOIN LATERAL (
                SELECT \(cols) FROM \(runs) WHERE run_id = e.run_id AND step = e.step OFFSET 0
            ) current
            WHERE NOT EXISTS (SELECT 1 FROM claimed WHERE claimed.run_id = e.run_id AND claimed.step = e.step)
            """)
        // $1 ids, $2 outputs (binary arrays, `PGParameter`)
        completeSteps = statement("complete_steps", """
            WITH updated AS (
                UPDATE \(runs) s SET \(completion(output: "($2::jsonb[])[array_position($1::uuid[], s.id)]")),
                    updated_at = clock_timestamp()
                WHERE s.id = ANY($1::uuid[]) AND s.status = 'running'
                RETURNING array_position($1::uuid[], s.id) AS ord, \(Self.stepRunColumns("s"))
            )
            SELECT 'ok', * FROM updated
            UNION ALL
            SELECT 'stale', k.ord, current.* FROM unnest($1::uuid[]) WITH ORDINALITY AS k(id, ord) CROSS JOIN LATERAL (
                SELECT \(cols) FROM \(runs) WHERE id = k.id OFFSET 0
            ) current
            WHERE NOT EXISTS (SELECT 1 FROM updated WHERE updated.ord = k.ord)
            """)
        scheduleStep = statement("schedule_step", """
            WITH inserted AS (
                INSERT INTO \(runs) (id, run_id, step, status, input, recovery, inserted_at, updated_at)
                VALUES ($1, $2, $3, 'pending', $4, $5, clock_timestamp(), clock_timestamp())
                ON CONFLICT (run_id, step) DO NOTHING
                RETURNING \(cols)
            )
            SELECT 'schedule', * FROM inserted
            UNION ALL
            SELECT 'skip', \(cols) FROM \(runs)
            WHERE run_id = $2 AND step = $3 AND NOT EXISTS (SELECT 1 FROM inserted)
            """)
        // $1 run_id, $2 ids, $3 steps, $4 inputs, $5 recoveries (binary arrays, `PGParameter`)
        scheduleSteps = statement("schedule_steps", """
            INSERT INTO \(runs) (id, run_id, step, status, input, recovery, inserted_at, updated_at)
            SELECT e.id, $1, e.step, 'pending', e.input, e.recovery, clock_timestamp(), clock_timestamp()
            FROM unnest($2::uuid[], $3::text[], $4::jsonb[], $5::jsonb[]) AS e(id, step, input, recovery)
            ON CONFLICT (run_id, step) DO NOTHING
            RETURNING step
            """)
        deletePendingSteps = statement("delete_pending_steps", """
            WITH deleted AS (
                DELETE FROM \(runs) WHERE run_id = $1 AND step = ANY($2::text[]) AND status = 'pending' RETURNING 1
            )
            SELECT count(*) FROM deleted
            """)
        completeStep = fenced("complete_step", fence: "running", set: completion(output: "$2"))
        completeManualStep = fenced("complete_manual_step", fence: "running", set: """
            status = 'completed', output = $2, manual = $3, completed_at = clock_timestamp(), last_error = NULL
            """)
        failStep = fenced("fail_step", fence: "running", set: """
            status = 'failed', last_error = $2, manual = NULL, resume = NULL
            """)
        persistPauseResume = fenced("persist_pause_resume", fence: "running", set: """
            resume = jsonb_build_object('output', $2::jsonb, 'target', $3::text)
            """)
        persistApprovalResume = fenced("persist_approval_resume", fence: "running", set: """
            resume = jsonb_build_object('kind', 'approval', 'ok_target', $2::text, 'error_target', $3::text, 'output_key', $4::text)
            """)
        recordFailureRecovery = fenced("record_failure_recovery", fence: "failed", set: """
            recovery = coalesce(recovery, '{}'::jsonb)
                || jsonb_build_object('failure', jsonb_build_object('strategy', $2::text, 'target', $3::text))
            """)
        updateRecovery = statement("update_recovery", """
            UPDATE \(runs) SET recovery = $2, updated_at = clock_timestamp() WHERE id = $1 RETURNING 'ok', \(cols)
            """)
        getStepRun = statement("get_step_run", "SELECT \(cols) FROM \(runs) WHERE run_id = $1 AND step = $2")
        // $1 attempt id, $2 step_run_id
        beginAttempt = statement("begin_attempt", """
            WITH bumped AS (
                UPDATE \(runs) SET attempt_seq = attempt_seq + 1 WHERE id = $2 RETURNING id, run_id, attempt_seq
            )
            INSERT INTO \(attempts) (id, step_run_id, run_id, attempt_number, status, inserted_at, updated_at)
            SELECT $1, id, run_id, attempt_seq, 'running', clock_timestamp(), clock_timestamp() FROM bumped
            RETURNING \(attemptCols)
            """)
        completeAttempt = fencedAttempt("complete_attempt", set: "status = 'completed', error = NULL, completed_at = clock_timestamp()")
        failAttempt = fencedAttempt("fail_attempt", set: "status = 'failed', error = $2")
        // $1 attempt id, $2 step_run_id, $3 number, $4 status, $5 error
        recordAttempt = statement("record_attempt", """
            WITH target AS (
                UPDATE \(runs) SET attempt_seq = greatest(attempt_seq, $3::int) WHERE id = $2 RETURNING id, run_id
            ), inserted AS (
                INSERT INTO \(attempts) (id, step_run_id, run_id, attempt_number, status, error, completed_at, inserted_at, updated_at)
                SELECT $1, id, run_id, $3::int, $4::text, $5::jsonb,
                       CASE WHEN $4::text = 'completed' THEN clock_timestamp() END, clock_timestamp(), clock_timestamp()
                FROM target
                ON CONFLICT (step_run_id, attempt_number) DO NOTHING
                RETURNING \(attemptCols)
            )
            SELECT 'ok', * FROM inserted
            UNION ALL
            SELECT 'exists', NULL::uuid, NULL::uuid, NULL::int, NULL::text, NULL::jsonb, NULL::int8, NULL::int8
            FROM target WHERE NOT EXISTS (SELECT 1 FROM inserted)
            """)
        attemptCount = statement("attempt_count", """
            SELECT (SELECT count(*) FROM \(attempts) a WHERE a.step_run_id = s.id) FROM \(runs) s WHERE s.id = $1
            """)
        latestAttempt = statement("latest_attempt", """
            SELECT \(Self.attemptColumns("a")) FROM \(runs) s
            LEFT JOIN LATERAL (
                SELECT * FROM \(attempts) WHERE step_run_id = s.id ORDER BY attempt_number DESC LIMIT 1
            ) a ON true
            WHERE s.id = $1
            """)
        purgeRun = statement("purge_run", """
            WITH purged_attempts AS (DELETE FROM \(attempts) WHERE run_id = $1 RETURNING 1),
                 purged_runs AS (DELETE FROM \(runs) WHERE run_id = $1 RETURNING 1)
            SELECT (SELECT count(*) FROM purged_runs), (SELECT count(*) FROM purged_attempts)
            """)
        lists = ListSQL(runs: runs, attempts: attempts)
        health = statement("health", "SELECT 1 FROM \(runs) LIMIT 0")
    }
}
