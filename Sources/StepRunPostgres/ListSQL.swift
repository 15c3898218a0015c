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
/// no payload is read for them. Only those rows are then measured — octet_length of each column
/// as libpq receives it, plus what protobuf adds around it — and only the rows within the budget
/// are rendered. So a page never reads more than the candidates' keys and one response's worth of
/// payload, however large the run is.
import Foundation

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
        return """
            SELECT * FROM (
                WITH k AS (\(keys)),
                measured AS (
                    SELECT k.*, row_number() OVER w AS n, sum(\(size)) OVER w AS running
                    FROM k JOIN \(table) r ON r.id = k.id
                    WINDOW w AS (ORDER BY \(order) ROWS UNBOUNDED PRECEDING)
                ),
                p AS (SELECT m.*, (m.n = 1 OR $3::int8 IS NULL OR m.running <= $3::int8) AS fit FROM measured m)
                SELECT CASE WHEN p.fit THEN 'ok' ELSE 'over' END AS fit_text, \(cursor.replacingOccurrences(of: "k.", with: "p.")),
                    \(elementOrNull)
                FROM p JOIN \(table) r ON r.id = p.id
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
