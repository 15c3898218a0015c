import Foundation

/// The paged list statements (completed_steps, completed_outputs, compensation order,
/// step_statuses, list_attempts); docs/STORE.md, "Reading large runs".
///
/// Every one has the same parameters and the same shape of row, so one decoder reads them all:
/// - $1 the run (the step run for list_attempts), $2 the most candidate rows (NULL: all),
///   $3 the page's byte budget (NULL: none), then the cursor of the previous page (NULL: start).
/// - Row: `fit` ('ok' while the page's running size is within the budget — always for its first
///   row —, 'over' after), the row's cursor columns, then the element's columns.
///
/// The statement first picks the candidate rows by key alone (keyset on the list's order, LIMIT):
/// no payload is read for them. It then walks them in order (a recursive CTE over their ids, one
/// primary-key lookup each), measuring each — octet_length of each column as libpq receives it,
/// plus what protobuf adds around it — and stops at the first row past the budget, which only
/// says that the list goes on. So a page renders its own rows and one more, and never sends more
/// than one response's worth of payload, however large the run is.
struct ListSQL {
    let completedSteps: PreparedStatement
    let completedOutputs: PreparedStatement
    let compensationOrder: PreparedStatement
    let stepStatuses: PreparedStatement
    let listAttempts: PreparedStatement

    /// Protobuf bytes around one element, over its columns' own bytes (docs/PROTOCOL.md §6): an
    /// element's tag and length, and for entities their fixed fields. Upper bounds, so a page that
    /// fits the budget by this count fits the response.
    enum Overhead {
        static let text = 8
        /// Tag and length of the entry, its step's tag and length, its status.
        static let statusEntry = 16
        /// id, run_id, status, three timestamps, tags and lengths of the seven variable fields.
        static let stepRun = 160
        /// id, step_run_id, number, status, two timestamps, the error's tag and length.
        static let attempt = 96
    }

    init(runs: String, attempts: String) {
        func statement(_ name: String, _ sql: String) -> PreparedStatement {
            PreparedStatement(name: "steprun_\(name)", sql: sql)
        }
        func json(_ column: String) -> String { "coalesce(octet_length(r.\(column)::text), 0)" }

        // Completion order: completed_at, inserted_at, id (ascending).
        let completionKeys = """
            SELECT id, completed_at AS t, inserted_at AS i FROM \(runs)
            WHERE run_id = $1 AND status = 'completed'
              AND ($4::int8 IS NULL OR (completed_at, inserted_at, id) > (\(Self.time("$4")), \(Self.time("$5")), $6::uuid))
            ORDER BY completed_at, inserted_at, id LIMIT $2
            """
        let timeCursor = "\(Self.micros("k.t")), \(Self.micros("k.i")), k.id"
        completedSteps = statement("completed_steps", Self.page(
            keys: completionKeys, order: "k.t, k.i, k.id", table: runs, cursor: timeCursor,
            size: "octet_length(r.step) + \(Overhead.text)", element: "r.step"))
        completedOutputs = statement("completed_outputs", Self.page(
            keys: completionKeys, order: "k.t, k.i, k.id", table: runs, cursor: timeCursor,
            size: "octet_length(coalesce(r.output, '{}'::jsonb)::text) + \(Overhead.text)",
            element: "coalesce(r.output, '{}'::jsonb)"))

        // Compensation order: the latest completed attempt's time (else completed_at), inserted_at,
        // id, all descending (SPEC 15).
        let forwardTime = "coalesce(latest.completed_at, s.completed_at)"
        compensationOrder = statement("compensation_order", Self.page(
            keys: """
                SELECT s.id, \(forwardTime) AS t, s.inserted_at AS i FROM \(runs) s
                LEFT JOIN LATERAL (
                    SELECT max(a.completed_at) AS completed_at FROM \(attempts) a
                    WHERE a.step_run_id = s.id AND a.status = 'completed'
                ) latest ON true
                WHERE s.run_id = $1 AND s.status = 'completed'
                  AND ($4::int8 IS NULL OR (\(forwardTime), s.inserted_at, s.id) < (\(Self.time("$4")), \(Self.time("$5")), $6::uuid))
                ORDER BY t DESC, i DESC, s.id DESC LIMIT $2
                """,
            order: "k.t DESC, k.i DESC, k.id DESC", table: runs, cursor: timeCursor,
            size: """
                octet_length(r.step) + \(json("input")) + \(json("output")) + \(json("last_error")) + \(json("recovery")) \
                + \(json("resume")) + \(json("manual")) + \(Overhead.stepRun)
                """,
            element: StepRunSQL.stepRunColumns("r")))

        // By step name in byte order (COLLATE "C"), whatever the database's collation.
        stepStatuses = statement("step_statuses", Self.page(
            keys: """
                SELECT id, step COLLATE "C" AS t FROM \(runs)
                WHERE run_id = $1 AND ($4::text IS NULL OR step COLLATE "C" > $4::text COLLATE "C")
                ORDER BY step COLLATE "C" LIMIT $2
                """,
            order: "k.t", table: runs, cursor: "k.t",
            size: "octet_length(r.step) + \(Overhead.statusEntry)", element: "r.step, r.status"))

        // By attempt number; a row whose `fit` is NULL says the step run does not exist.
        listAttempts = statement("list_attempts", Self.page(
            keys: """
                SELECT id, attempt_number AS t FROM \(attempts)
                WHERE step_run_id = $1 AND ($4::int8 IS NULL OR attempt_number > $4::int8)
                ORDER BY attempt_number LIMIT $2
                """,
            order: "k.t", table: attempts, cursor: "k.t::int8",
            size: "\(json("error")) + \(Overhead.attempt)", element: StepRunSQL.attemptColumns("r"))
            + """

            UNION ALL
            SELECT NULL, NULL, \(StepRunSQL.attemptColumns("a")) FROM (SELECT NULL::uuid AS id, NULL::uuid AS step_run_id,
                NULL::int AS attempt_number, NULL::text AS status, NULL::jsonb AS error,
                NULL::timestamptz AS inserted_at, NULL::timestamptz AS updated_at) a
            WHERE NOT EXISTS (SELECT 1 FROM \(runs) WHERE id = $1)
            """)
    }

    /// One page: the candidates `keys` (aliased k, in `order`), measured, then rendered while
    /// within the budget. `cursor` is one expression (or several) over k.
    private static func page(keys: String, order: String, table: String, cursor: String, size: String, element: String) -> String {
        // Split at top-level commas only: an element column may be a call with arguments.
        var columns: [String] = [], depth = 0, current = ""
        for character in element {
            if character == "(" { depth += 1 } else if character == ")" { depth -= 1 }
            if character == ",", depth == 0 {
                columns.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        columns.append(current)
        let elementOrNull = columns.map { "CASE WHEN p.fit THEN \($0.trimmingCharacters(in: .whitespacesAndNewlines)) END" }
            .joined(separator: ", ")
        let measure = "(SELECT (\(size))::int8 FROM \(table) r WHERE r.id = o.ids[w.n + 1])"
        return """
            SELECT * FROM (
                WITH RECURSIVE k AS MATERIALIZED (\(keys)),
                ordered AS MATERIALIZED (SELECT array_agg(k.id ORDER BY \(order)) AS ids FROM k),
                walk (n, id, running) AS (
                    SELECT 1, o.ids[1], \(measure.replacingOccurrences(of: "w.n + 1", with: "1"))
                    FROM ordered o WHERE o.ids IS NOT NULL
                    UNION ALL
                    SELECT w.n + 1, o.ids[w.n + 1], w.running + \(measure)
                    FROM walk w CROSS JOIN ordered o
                    -- Past a first row forced in over the budget (one stored before the size
                    -- rules, or a lowered limit) the walk still takes one more row: the 'over'
                    -- row that says the list goes on. Without it the page would end the list.
                    WHERE w.n < cardinality(o.ids) AND ($3::int8 IS NULL OR w.n = 1 OR w.running <= $3::int8)
                ),
                p AS (SELECT w.*, (w.n = 1 OR $3::int8 IS NULL OR w.running <= $3::int8) AS fit FROM walk w)
                SELECT CASE WHEN p.fit THEN 'ok' ELSE 'over' END AS fit_text, \(cursor), \(elementOrNull)
                FROM p JOIN k ON k.id = p.id JOIN \(table) r ON r.id = p.id
                ORDER BY p.n
            ) page
            """
    }

    private static func time(_ parameter: String) -> String {
        "(timestamptz 'epoch' + \(parameter)::int8 * interval '1 microsecond')"
    }

    private static func micros(_ column: String) -> String {
        "(extract(epoch FROM \(column)) * 1000000)::int8"
    }
}
