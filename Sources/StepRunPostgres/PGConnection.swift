import CLibPQ
import Foundation
import StepRunCore

/// A failure reported by libpq or the server for one statement.
struct PGError: Error, Sendable, CustomStringConvertible {
    /// The five-character SQLSTATE, when the server sent one.
    var sqlState: String?
    var message: String
    /// True when the connection itself is gone (the statement's fate may be unknown).
    var connectionLost: Bool

    var description: String { sqlState.map { "\(message) (SQLSTATE \($0))" } ?? message }

    /// The table changed shape under a prepared statement (a migration by another daemon changed
    /// a column's type): Postgres refused to run it, so nothing of it happened. The connection's
    /// prepared statements are dropped (`PGConnection.forgetStalePreparedStatements`) and the
    /// call is run again.
    var isStalePlan: Bool {
        sqlState == "0A000" && message.contains("cached plan must not change result type")
    }
}

/// A statement prepared once per connection under a stable name.
struct PreparedStatement: Sendable {
    var name: String
    var sql: String
}

/// One libpq connection. Not thread-safe: each is owned by exactly one pool worker thread.
final class PGConnection {
    private var handle: OpaquePointer?
    private var prepared: Set<String> = []
    /// Set when a statement failed with `PGError.isStalePlan`; cleared by dropping them all.
    private var preparedStatementsStale = false
    /// For the watchdog that cancels statements nobody waits for any more (`StatementWatch`).
    private(set) var cancelKey: PGCancelKey?
    /// Set when the server refused a statement as read-only (SQLSTATE 25006): see `readOnlyReason`.
    private var refusedAsReadOnly = false

    /// Opens a connection (blocking, bounded by `connect_timeout`).
    init(parameters: [(String, String)]) throws(PGError) {
        let keys = parameters.map { strdup($0.0) }
        let values = parameters.map { strdup($0.1) }
        defer {
            keys.forEach { free($0) }
            values.forEach { free($0) }
        }
        var keyPointers: [UnsafePointer<CChar>?] = keys.map { UnsafePointer($0) } + [nil]
        var valuePointers: [UnsafePointer<CChar>?] = values.map { UnsafePointer($0) } + [nil]
        let connection = keyPointers.withUnsafeMutableBufferPointer { keyBuffer in
            valuePointers.withUnsafeMutableBufferPointer { valueBuffer in
                PQconnectdbParams(keyBuffer.baseAddress, valueBuffer.baseAddress, 1)
            }
        }
        guard let connection else {
            throw PGError(sqlState: nil, message: "out of memory opening a Postgres connection", connectionLost: true)
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.trimmed(PQerrorMessage(connection))
            PQfinish(connection)
            throw PGError(sqlState: nil, message: message, connectionLost: true)
        }
        // A read-only server counts as not connected: the pool backs off and reconnects (a
        // multi-host URL then tries its other hosts) until a primary answers.
        if let reason = Self.readOnlyReason(connection) {
            PQfinish(connection)
            throw PGError(sqlState: "25006", message: reason, connectionLost: true)
        }
        handle = connection
        cancelKey = PGCancelKey(connection: connection)
    }

    deinit {
        close()
    }

    /// Closes the connection; safe to call twice.
    func close() {
        if let handle {
            PQfinish(handle)
        }
        handle = nil
        cancelKey = nil
        prepared.removeAll()
    }

    /// True while the socket is open and in a usable state.
    ///
    /// An idle connection should have nothing to read: we never LISTEN, so anything the server sent
    /// while we were not waiting for a result is a termination notice (restart, admin kill, idle
    /// timeout) or end-of-file. Either way the connection is treated as dead here — before a
    /// statement is sent on it, while reconnecting and running the statement is still safe.
    var isUsable: Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK, PQtransactionStatus(handle) == PQTRANS_IDLE, !isReadOnly else { return false }
        var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 0
    }

    /// True when connected and inside a transaction block, failed or not.
    var isInTransaction: Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    /// True when connected and outside any transaction, on a server that takes writes.
    var isIdle: Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK, !isReadOnly else { return false }
        return PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    /// Runs SQL that takes no parameters (may hold several statements); returns the last result's rows.
    @discardableResult
    func simpleQuery(_ sql: String) throws(PGError) -> PGRows {
        let handle = try liveHandle()
        let result = PQexec(handle, sql)
        defer { PQclear(result) }
        return try rows(of: result)
    }

    /// Runs a prepared statement with text parameters, preparing it on first use on this connection.
    ///
    /// A statement refused because the table changed shape since it was prepared (`isStalePlan`)
    /// is prepared again and run once more — outside a transaction block; inside one, the block
    /// has failed and the error is the caller's (it maps to `ABORTED`, and the pool runs such a
    /// call again).
    func execute(_ statement: PreparedStatement, _ parameters: [String?]) throws(PGError) -> PGRows {
        try execute(statement, parameters.map { $0.map(PGParameter.text) })
    }

    /// `execute` with parameters that may be binary (arrays).
    func execute(_ statement: PreparedStatement, _ parameters: [PGParameter?]) throws(PGError) -> PGRows {
        do {
            return try executeOnce(statement, parameters)
        } catch where error.isStalePlan && isIdle {
            return try executeOnce(statement, parameters)
        }
    }

    private func executeOnce(_ statement: PreparedStatement, _ parameters: [PGParameter?]) throws(PGError) -> PGRows {
        let handle = try liveHandle()
        forgetStalePreparedStatements(handle)
        try prepareIfNeeded(statement, on: handle)
        let result = PGParameter.lend(parameters) { values, lengths, formats in
            PQexecPrepared(handle, statement.name, Int32(parameters.count), values, lengths, formats, 0)
        }
        defer { PQclear(result) }
        return try rows(of: result)
    }

    /// After a statement failed with `isStalePlan`, drops every statement prepared on the
    /// connection (all that read the changed table are stale) so they are prepared afresh on next
    /// use. Waits for a state in which Postgres accepts commands (not a failed transaction block).
    private func forgetStalePreparedStatements(_ handle: OpaquePointer) {
        guard preparedStatementsStale else { return }
        let status = PQtransactionStatus(handle)
        guard status == PQTRANS_IDLE || status == PQTRANS_INTRANS else { return }
        let result = PQexec(handle, "DEALLOCATE ALL")
        let succeeded = PQresultStatus(result) == PGRES_COMMAND_OK
        PQclear(result)
        guard succeeded else { return }
        prepared.removeAll()
        preparedStatementsStale = false
    }

    /// Sends an already prepared statement without waiting for its result; collect the result with
    /// `awaitResult(within:)` and, if that runs out of time, `finishResult()`. False if sending failed.
    func send(_ statement: PreparedStatement, _ parameters: [PGParameter?]) -> Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK, !preparedStatementsStale, prepared.contains(statement.name) else { return false }
        // Blocking mode: a statement this small fits the socket buffer of a connection with nothing in flight.
        return PGParameter.lend(parameters) { values, lengths, formats in
            PQsendQueryPrepared(handle, statement.name, Int32(parameters.count), values, lengths, formats, 0) == 1
        }
    }

    /// Waits at most `limit` for the result of the statement `send` started: nil when it has not
    /// arrived by then (it is still in flight: call `finishResult()`), else its rows or its error.
    func awaitResult(within limit: Duration) -> Result<PGRows, PGError>? {
        guard let handle else { return .failure(PGError(sqlState: nil, message: "connection is closed", connectionLost: true)) }
        let end = ContinuousClock.now.advanced(by: limit)
        while true {
            guard PQconsumeInput(handle) == 1 else { return .failure(failure("reading a result failed")) }
            if PQisBusy(handle) == 0 { return collectResult(handle) }
            let remaining = end - .now
            guard remaining > .zero else { return nil }
            guard steprun_wait_readable(PQsocket(handle), remaining.inNanoseconds) >= 0 || errno == EINTR else {
                return .failure(failure("waiting for a result failed"))
            }
        }
    }

    /// Waits (blocking) for the result of the statement `send` started.
    func finishResult() -> Result<PGRows, PGError> {
        guard let handle else { return .failure(PGError(sqlState: nil, message: "connection is closed", connectionLost: true)) }
        return collectResult(handle)
    }

    /// Reads one statement's result and the null result that ends it.
    private func collectResult(_ handle: OpaquePointer) -> Result<PGRows, PGError> {
        let result = PQgetResult(handle)
        let rows = Result { () throws(PGError) in try self.rows(of: result) }
        PQclear(result)
        if let current = self.handle, current == handle {
            while let extra = PQgetResult(current) { PQclear(extra) }
        }
        return rows
    }

    private func prepareIfNeeded(_ statement: PreparedStatement, on handle: OpaquePointer) throws(PGError) {
        guard !prepared.contains(statement.name) else { return }
        let result = PQprepare(handle, statement.name, statement.sql, 0, nil)
        defer { PQclear(result) }
        _ = try rows(of: result)
        prepared.insert(statement.name)
    }

    /// Prepares the steps' statements not yet prepared on this connection; nothing of the steps
    /// runs. A failure here (a prepare blocked on a table lock and cancelled, say) sent nothing else.
    func prepare(_ steps: [BoundStatement]) throws(PGError) {
        let handle = try liveHandle()
        forgetStalePreparedStatements(handle)
        for step in steps {
            try prepareIfNeeded(step.prepared, on: handle)
        }
    }

    /// Sends every step in one libpq pipeline followed by one Sync — a single round trip — without
    /// waiting for any result; `receivePipeline` reads them. The connection is in pipeline mode
    /// until then, and the reading may happen on another thread once this one has handed the
    /// connection over (`HeldGroupHandover`).
    func sendPipeline(_ steps: [BoundStatement]) throws(PGError) {
        try prepare(steps)
        let handle = try liveHandle()
        guard PQenterPipelineMode(handle) == 1 else { throw failure("cannot enter pipeline mode") }
        // Sending could block while Postgres blocks writing results we are not yet reading (large
        // payloads): send without blocking, reading whatever arrives, until everything is out.
        PQsetnonblocking(handle, 1)
        var sent = true
        for step in steps where sent {
            sent = PGParameter.lend(step.parameters) { values, lengths, formats in
                PQsendQueryPrepared(handle, step.prepared.name, Int32(step.parameters.count), values, lengths, formats, 0) == 1
            }
        }
        guard sent, PQpipelineSync(handle) == 1, flushWithoutBlocking(handle) else {
            let error = failure("sending a pipeline failed")
            close()
            throw error
        }
        PQsetnonblocking(handle, 0)
    }

    /// Reads the outcomes of the `count` steps `sendPipeline` sent, in order, then their Sync, and
    /// leaves pipeline mode.
    ///
    /// After the first failing step Postgres skips the rest up to the Sync; those come back as
    /// failures saying they were skipped. Throws only when the connection itself fails (the
    /// pipeline's fate is then unknown and the connection is closed). `hook` runs once the result
    /// of step `hookAfter` has been read, before the later steps' are waited for.
    func receivePipeline(
        count: Int, hookAfter: Int? = nil, _ hook: () -> Void = {}
    ) throws(PGError) -> [Result<PGRows, PGError>] {
        let handle = try liveHandle()
        var outcomes: [Result<PGRows, PGError>] = []
        outcomes.reserveCapacity(count)
        for index in 0..<count {
            guard let result = PQgetResult(handle) else {
                let error = failure("the pipeline ended early")
                close()
                throw error
            }
            if PQresultStatus(result) == PGRES_PIPELINE_ABORTED {
                outcomes.append(.failure(PGError(sqlState: nil, message: "skipped after an earlier failure in the group", connectionLost: false)))
            } else {
                outcomes.append(Result { () throws(PGError) in try rows(of: result) })
            }
            PQclear(result)
            guard handle == self.handle else { throw PGError(sqlState: nil, message: "connection lost in a pipeline", connectionLost: true) }
            // Each step's results end with a null result.
            while let extra = PQgetResult(handle) { PQclear(extra) }
            if index == hookAfter { hook() }
        }
        guard let sync = PQgetResult(handle), PQresultStatus(sync) == PGRES_PIPELINE_SYNC else {
            let error = failure("the pipeline did not end with its sync")
            close()
            throw error
        }
        PQclear(sync)
        guard PQexitPipelineMode(handle) == 1 else {
            let error = failure("cannot leave pipeline mode")
            close()
            throw error
        }
        return outcomes
    }

    /// Flushes libpq's output buffer in non-blocking mode, consuming input meanwhile so the server
    /// can always make progress. False when the connection failed.
    private func flushWithoutBlocking(_ handle: OpaquePointer) -> Bool {
        while true {
            switch PQflush(handle) {
            case 0: return true
            case 1:
                var descriptor = pollfd(fd: PQsocket(handle), events: Int16(POLLIN | POLLOUT), revents: 0)
                guard poll(&descriptor, 1, -1) >= 0 || errno == EINTR else { return false }
                if descriptor.revents & Int16(POLLIN) != 0, PQconsumeInput(handle) == 0 { return false }
            default: return false
            }
        }
    }

    private func failure(_ context: String) -> PGError {
        let detail = handle.map { Self.trimmed(PQerrorMessage($0)) } ?? "connection is closed"
        return PGError(sqlState: nil, message: "\(context): \(detail)", connectionLost: isBroken)
    }

    private func liveHandle() throws(PGError) -> OpaquePointer {
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            throw PGError(sqlState: nil, message: "connection is closed", connectionLost: true)
        }
        return handle
    }

    private func rows(of result: OpaquePointer?) throws(PGError) -> PGRows {
        guard let result else {
            throw PGError(sqlState: nil, message: Self.trimmed(PQerrorMessage(handle)), connectionLost: isBroken)
        }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_SINGLE_TUPLE:
            let rowCount = Int(PQntuples(result))
            let columnCount = Int(PQnfields(result))
            var values: [String?] = []
            values.reserveCapacity(rowCount * columnCount)
            for row in 0..<rowCount {
                for column in 0..<columnCount {
                    if PQgetisnull(result, Int32(row), Int32(column)) == 0, let text = PQgetvalue(result, Int32(row), Int32(column)) {
                        // The length libpq already knows, rather than a strlen over a large payload.
                        let length = Int(PQgetlength(result, Int32(row), Int32(column)))
                        values.append(String(decoding: UnsafeRawBufferPointer(start: text, count: length), as: UTF8.self))
                    } else {
                        values.append(nil)
                    }
                }
            }
            return PGRows(columnCount: columnCount, values: values)
        case PGRES_COMMAND_OK, PGRES_EMPTY_QUERY:
            return PGRows(columnCount: 0, values: [])
        default:
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
                ?? Self.trimmed(PQresultErrorMessage(result))
            if isBroken { close() }
            if sqlState == "25006" { refusedAsReadOnly = true }  // read_only_sql_transaction
            let error = PGError(sqlState: sqlState, message: message, connectionLost: handle == nil)
            if error.isStalePlan { preparedStatementsStale = true }
            throw error
        }
    }

    /// The server turned read-only since connecting (it reported so, or refused a write): the
    /// connection is no longer usable and the pool replaces it.
    private var isReadOnly: Bool {
        guard let handle else { return false }
        return refusedAsReadOnly || Self.reportsReadOnly(handle)
    }

    private var isBroken: Bool {
        guard let handle else { return true }
        return PQstatus(handle) != CONNECTION_OK
    }

    private static func trimmed(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown libpq error" }
        return String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
