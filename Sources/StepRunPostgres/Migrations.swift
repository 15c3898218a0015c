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
        Migration(
            version: 2, name: "column rules as domains",
            sql: """
                -- Postgres compiles a table's column CHECK constraints again for every statement that
                -- writes it — all eight of step_runs', whichever columns change: about 55 µs per
                -- statement on the benchmark machine. A domain's constraint is compiled once per
                -- connection and checked only where a value of that domain is written.
                --
                -- Neither table is rewritten: columns change to domains that have no constraint yet
                -- (the same storage), and the constraints are added NOT VALID, i.e. not checked against
                -- the rows already there — the column CHECKs dropped here guaranteed those. Only the
                -- partial index on status is rebuilt (its predicate names the column).
                CREATE DOMAIN {schema}.json_object AS jsonb;
                CREATE DOMAIN {schema}.step_name AS text;
                CREATE DOMAIN {schema}.step_status AS text;
                CREATE DOMAIN {schema}.attempt_number AS integer;
                CREATE DOMAIN {schema}.attempt_status AS text;

                ALTER TABLE {schema}.step_runs
                    DROP CONSTRAINT step_runs_step_check,
                    DROP CONSTRAINT step_runs_status_check,
                    DROP CONSTRAINT step_runs_input_check,
                    DROP CONSTRAINT step_runs_output_check,
                    DROP CONSTRAINT step_runs_last_error_check,
                    DROP CONSTRAINT step_runs_recovery_check,
                    DROP CONSTRAINT step_runs_resume_check,
                    DROP CONSTRAINT step_runs_manual_check,
                    ALTER COLUMN step TYPE {schema}.step_name,
                    ALTER COLUMN status TYPE {schema}.step_status,
                    ALTER COLUMN input TYPE {schema}.json_object,
                    ALTER COLUMN output TYPE {schema}.json_object,
                    ALTER COLUMN last_error TYPE {schema}.json_object,
                    ALTER COLUMN recovery TYPE {schema}.json_object,
                    ALTER COLUMN resume TYPE {schema}.json_object,
                    ALTER COLUMN manual TYPE {schema}.json_object;
                ALTER TABLE {schema}.step_attempts
                    DROP CONSTRAINT step_attempts_attempt_number_check,
                    DROP CONSTRAINT step_attempts_status_check,
                    DROP CONSTRAINT step_attempts_error_check,
                    ALTER COLUMN attempt_number TYPE {schema}.attempt_number,
                    ALTER COLUMN status TYPE {schema}.attempt_status,
                    ALTER COLUMN error TYPE {schema}.json_object;

                ALTER DOMAIN {schema}.json_object
                    ADD CONSTRAINT json_object_is_object CHECK (jsonb_typeof(VALUE) = 'object') NOT VALID;
                ALTER DOMAIN {schema}.step_name
                    ADD CONSTRAINT step_name_length CHECK (octet_length(VALUE) BETWEEN 1 AND 255) NOT VALID;
                ALTER DOMAIN {schema}.step_status
                    ADD CONSTRAINT step_status_known CHECK (VALUE IN ('pending', 'running', 'completed', 'failed')) NOT VALID;
                ALTER DOMAIN {schema}.attempt_number
                    ADD CONSTRAINT attempt_number_positive CHECK (VALUE >= 1) NOT VALID;
                ALTER DOMAIN {schema}.attempt_status
                    ADD CONSTRAINT attempt_status_known CHECK (VALUE IN ('running', 'completed', 'failed')) NOT VALID;
                """),
        Migration(
            version: 3, name: "completions as HOT updates",
            sql: """
                -- A row update that changes no indexed column, and finds room on its page, is a HOT
                -- update: Postgres writes the new version beside the old and inserts no index entries.
                -- step_runs_completed named status (its predicate) and completed_at, which every
                -- completion changes, so each completion inserted an entry into all three indexes.
                -- Without it, completion-ordered reads use step_runs_run_step and sort the run's
                -- completed rows (they read them all anyway), and completing a step inserts none.
                --
                -- fillfactor leaves room on each new page for the rows' next versions (a row grows by
                -- its output when it completes). Pages already written keep their contents; nothing
                -- is rewritten. Measured on the benchmark machine (docs/PERFORMANCE.md): 32 clients,
                -- 100-byte payloads, HOT completions 74 % at fillfactor 100, 80 % at 90, 91 % at 75.
                DROP INDEX {schema}.step_runs_completed;
                ALTER TABLE {schema}.step_runs SET (fillfactor = 90);
                """),
    ]

    static var latestVersion: Int { all.last?.version ?? 0 }
}
