/// The schema's history. Each migration runs once, in its own transaction, in version order.
/// Never edit a released migration: add a new one.
struct Migration: Sendable {
    var version: Int
    var name: String
    /// SQL with `{schema}` standing for the quoted schema name.
    var sql: String
}

enum Migrations {
    static let all: [Migration] = [
        Migration(
            version: 1, name: "step runs and attempts",
            sql: """
                CREATE TABLE {schema}.step_runs (
                    id            uuid        PRIMARY KEY,
                    run_id        uuid        NOT NULL,
                    step          text        NOT NULL CHECK (octet_length(step) BETWEEN 1 AND 255),
                    status        text        NOT NULL CHECK (status IN ('pending', 'running', 'completed', 'failed')),
                    input         jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(input) = 'object'),
                    output        jsonb       CHECK (jsonb_typeof(output) = 'object'),
                    last_error    jsonb       CHECK (jsonb_typeof(last_error) = 'object'),
                    recovery      jsonb       CHECK (jsonb_typeof(recovery) = 'object'),
                    resume        jsonb       CHECK (jsonb_typeof(resume) = 'object'),
                    manual        jsonb       CHECK (jsonb_typeof(manual) = 'object'),
                    -- Highest attempt number handed out; bumping it under the row lock is what makes
                    -- concurrent begin_attempt calls get distinct consecutive numbers.
                    attempt_seq   integer     NOT NULL DEFAULT 0,
                    inserted_at   timestamptz NOT NULL,
                    updated_at    timestamptz NOT NULL,
                    completed_at  timestamptz,
                    CONSTRAINT step_runs_run_step UNIQUE (run_id, step)
                );

                -- Completion-ordered reads of one run (completed_steps, completed_outputs, compensation).
                CREATE INDEX step_runs_completed ON {schema}.step_runs (run_id, completed_at, inserted_at, id)
                    WHERE status = 'completed';

                CREATE TABLE {schema}.step_attempts (
                    id             uuid        PRIMARY KEY,
                    step_run_id    uuid        NOT NULL REFERENCES {schema}.step_runs (id) ON DELETE CASCADE,
                    -- Denormalised so that a run's rows can be purged, and later distributed, by run_id.
                    run_id         uuid        NOT NULL,
                    attempt_number integer     NOT NULL CHECK (attempt_number >= 1),
                    status         text        NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
                    error          jsonb       CHECK (jsonb_typeof(error) = 'object'),
                    inserted_at    timestamptz NOT NULL,
                    updated_at     timestamptz NOT NULL,
                    completed_at   timestamptz,
                    CONSTRAINT step_attempts_number UNIQUE (step_run_id, attempt_number)
                );

                CREATE INDEX step_attempts_run ON {schema}.step_attempts (run_id);
                """),
    ]

    static var latestVersion: Int { all.last?.version ?? 0 }
}
