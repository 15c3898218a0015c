import CLibPQ
import Foundation

/// What libpq needs to ask the server to cancel whatever a connection's backend is running: its
/// `PGcancel` object, made once on the connection's own thread when it connects.
///
/// libpq documents `PQcancel` as safe to call from another thread than the one using the `PGconn`
/// (the `PGcancel` object is read-only to it), while `PQgetCancel` reads the `PGconn` itself — so
/// the object is made up front by the owning thread, and the watchdog (`StatementWatch`) only ever
/// calls `cancel()`. It is freed when the last reference goes (the connection and any cancel in
/// progress each hold one), so a cancel racing a reconnect never uses freed memory.
final class PGCancelKey: @unchecked Sendable {
    // Immutable after init; PQcancel only reads it (see above).
    private let pointer: OpaquePointer

    /// Nil when libpq cannot make one (out of memory, no connection).
    init?(connection: OpaquePointer) {
        guard let pointer = PQgetCancel(connection) else { return nil }
        self.pointer = pointer
    }

    deinit {
        PQfreeCancel(pointer)
    }

    /// Sends the cancel request and waits until the server has processed it (libpq waits for the
    /// postmaster to close the cancel connection, so a statement sent after this returns is not
    /// the one cancelled). Returns nil on success, else libpq's reason.
    ///
    /// Postgres cancels whatever the backend is running when the request arrives; the caller
    /// (`StatementWatch`) makes sure that is still the statement it means.
    func cancel() -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: 256) { buffer -> String? in
            guard let base = buffer.baseAddress else { return "no buffer for the cancel request's error" }
            base.initialize(repeating: 0, count: buffer.count)
            defer { base.deinitialize(count: buffer.count) }
            if PQcancel(pointer, base, Int32(buffer.count)) == 1 { return nil }
            return String(cString: base)
        }
    }
}

extension PGConnection {
    /// Why a freshly opened connection cannot serve steprund, or nil if it can: a server that only
    /// reads (a hot standby, or `default_transaction_read_only` on) would fail every write.
    ///
    /// Postgres 14 and later report `in_hot_standby` and `default_transaction_read_only` at
    /// connect and whenever they change (`PQparameterStatus`, no round trip); an older server
    /// reports neither, and a write it refuses with SQLSTATE 25006 marks the connection read-only
    /// instead (`PGConnection.rows(of:)`).
    static func readOnlyReason(_ handle: OpaquePointer) -> String? {
        func parameter(_ name: String) -> String? {
            PQparameterStatus(handle, name).map { String(cString: $0) }
        }
        let server = [PQhost(handle), PQport(handle)].compactMap { $0.map { String(cString: $0) } }.joined(separator: ":")
        if parameter("in_hot_standby") == "on" {
            return "the database server \(server) is a read-only standby (in_hot_standby = on); steprund needs the primary"
        }
        if parameter("default_transaction_read_only") == "on" {
            return "the database server \(server) is read-only (default_transaction_read_only = on); steprund needs the primary"
        }
        return nil
    }
}

extension PGConnection {
    /// `readOnlyReason` without building strings, for the check before every call (`isUsable`).
    static func reportsReadOnly(_ handle: OpaquePointer) -> Bool {
        for name in ["in_hot_standby", "default_transaction_read_only"] {
            if let value = PQparameterStatus(handle, name), strcmp(value, "on") == 0 { return true }
        }
        return false
    }
}
