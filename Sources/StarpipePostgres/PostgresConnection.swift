import CLibPQ
import Foundation

/// A synchronous connection to Postgres through libpq.
///
/// One connection serves one thread at a time (libpq connections are not thread-safe). It speaks
/// COPY in any format and to any schema-qualified table, which is why starpipe uses libpq here.
public final class PostgresConnection {
    private let handle: OpaquePointer

    /// The libpq connection, for extensions of this type in this module.
    var rawHandle: OpaquePointer { handle }

    /// The session settings of a pipeline connection: the ones every value-converting function of the
    /// extension pins (so a text COPY of a timestamp without an offset reads it as UTC, whatever PGTZ or a
    /// role's `SET` says), plus READ COMMITTED, which `register` and `promote` require.
    public static let pipelineSettings: [(name: String, value: String)] = [
        ("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"), ("IntervalStyle", "postgres"), ("extra_float_digits", "3"),
        ("bytea_output", "hex"), ("xmloption", "content"), ("standard_conforming_strings", "on"), ("lc_monetary", "C"),
        ("default_transaction_isolation", "read committed"),
    ]

    /// Connects with a libpq connection string or `postgresql://` URL, then applies `settings` to the session.
    /// Passwords come from the URL, `PGPASSWORD` or `~/.pgpass`; they are never logged.
    public convenience init(url: String, applicationName: String = "starpipe",
                            settings: [(name: String, value: String)]) throws(PostgresError) {
        try self.init(url: url, applicationName: applicationName)
        for setting in settings {
            try query("SELECT pg_catalog.set_config($1, $2, false)", [setting.name, setting.value])
        }
    }

    /// Connects with a libpq connection string or `postgresql://` URL.
    /// Passwords come from the URL, then `password`, `PGPASSWORD` or `~/.pgpass`; they are never logged.
    public init(url: String, applicationName: String = "starpipe", password: String? = nil) throws(PostgresError) {
        var keys: [UnsafePointer<CChar>?] = []
        var values: [UnsafePointer<CChar>?] = []
        // UTF-8 always: the worker sends UTF-8 and the extractor writes it, whatever PGCLIENTENCODING or the
        // database's default says. Keys after "dbname" override what the URL sets; a password before it is used
        // only when the URL holds none.
        let pairs: [String] = (password.map { ["password", $0] } ?? [])
            + ["dbname", url, "application_name", applicationName, "connect_timeout", "10", "client_encoding", "UTF8"]
        let strings: [UnsafeMutablePointer<CChar>] = pairs.map { strdup($0)! }
        defer { strings.forEach { free($0) } }
        for index in stride(from: 0, to: strings.count, by: 2) {
            keys.append(UnsafePointer(strings[index]))
            values.append(UnsafePointer(strings[index + 1]))
        }
        keys.append(nil)
        values.append(nil)
        // expand_dbname=1 lets "dbname" carry a whole URL or key=value string.
        guard let connection = PQconnectdbParams(keys, values, 1) else {
            throw PostgresError(code: .connection, serverMessage: "out of memory")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.libpqMessage(connection)
            PQfinish(connection)
            throw PostgresError(code: .connection, sqlState: "08001", serverMessage: message)
        }
        // Server notices are not errors; keep them off the terminal (the ledger records what matters).
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        self.handle = connection
    }

    deinit {
        PQfinish(handle)
    }

    /// Runs one statement with text parameters (`$1`, `$2`, …) and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) -> PostgresResult {
        let result = Self.withCStrings(parameters) { pointers in
            PQexecParams(handle, sql, Int32(parameters.count), nil, pointers, nil, nil, 0)
        }
        return try consume(result)
    }

    /// Runs one or more statements without parameters (BEGIN, SET, DDL scripts).
    public func execute(_ sql: String) throws(PostgresError) {
        try consume(PQexec(handle, sql))
    }

    /// Runs a `COPY … FROM STDIN` statement and streams its data from `body`.
    ///
    /// `body` receives a ``CopyWriter``; throwing from it aborts the COPY (the server discards
    /// everything sent) and rethrows. Returns the number of rows the server stored.
    public func copyIn(_ sql: String, _ body: (inout CopyWriter) throws -> Void) throws -> Int {
        let start = PQexec(handle, sql)
        guard PQresultStatus(start) == PGRES_COPY_IN else {
            _ = try consume(start)
            throw PostgresError(code: .copy, serverMessage: "statement did not start COPY FROM STDIN")
        }
        PQclear(start)
        var writer = CopyWriter(handle: handle)
        do {
            try body(&writer)
        } catch {
            _ = PQputCopyEnd(handle, "aborted by starpipe")
            drainResults()
            throw error
        }
        guard PQputCopyEnd(handle, nil) == 1 else {
            let message = Self.libpqMessage(handle)
            drainResults()
            throw PostgresError(code: .connection, serverMessage: message)
        }
        var stored = 0
        var failure: PostgresError?
        while let result = PQgetResult(handle) {
            if failure == nil {
                do { stored = try consume(result).affectedRows } catch { failure = error }
            } else {
                PQclear(result)
            }
        }
        if let failure { throw failure }
        return stored
    }

    /// Runs a `COPY … TO STDOUT` statement and hands each chunk of its data to `body` as it arrives (one row
    /// per chunk in libpq), so nothing is held whole. Throwing from `body` cancels the COPY and rethrows.
    /// Returns the number of rows the server sent.
    @discardableResult
    public func copyOut(_ sql: String, _ body: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        let start = PQexec(handle, sql)
        guard PQresultStatus(start) == PGRES_COPY_OUT else {
            _ = try consume(start)
            throw PostgresError(code: .copy, serverMessage: "statement did not start COPY TO STDOUT")
        }
        PQclear(start)
        var buffer: UnsafeMutablePointer<CChar>?
        while true {
            let length = PQgetCopyData(handle, &buffer, 0)
            if length > 0, let chunk = buffer {
                defer { PQfreemem(chunk) }
                do {
                    try body(UnsafeRawBufferPointer(start: chunk, count: Int(length)))
                } catch {
                    // Stop the server sending: cancel, then read what is left to the end.
                    if let canceller = makeCanceller() { _ = canceller.cancel() }
                    while PQgetCopyData(handle, &buffer, 0) > 0 { if let rest = buffer { PQfreemem(rest) } }
                    drainResults()
                    throw error
                }
            } else if length == -1 {
                break
            } else {
                let message = Self.libpqMessage(handle)
                drainResults()
                throw PostgresError(code: .connection, serverMessage: message)
            }
        }
        var sent = 0
        var failure: PostgresError?
        while let result = PQgetResult(handle) {
            if failure == nil {
                do { sent = try consume(result).affectedRows } catch { failure = error }
            } else {
                PQclear(result)
            }
        }
        if let failure { throw failure }
        return sent
    }

    /// True while the connection is usable.
    public var isHealthy: Bool { PQstatus(handle) == CONNECTION_OK }

    /// True while a transaction is open on the connection (also when it has failed and awaits ROLLBACK).
    public var isInTransaction: Bool {
        let status = PQtransactionStatus(handle)
        return status == PQTRANS_INTRANS || status == PQTRANS_INERROR
    }

    private func drainResults() {
        while let result = PQgetResult(handle) { PQclear(result) }
    }

    @discardableResult
    private func consume(_ result: OpaquePointer?) throws(PostgresError) -> PostgresResult {
        guard let result else {
            throw PostgresError(code: .connection, serverMessage: Self.libpqMessage(handle))
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            break
        default:
            throw Self.error(from: result, connection: handle)
        }
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        var columns: [String] = []
        columns.reserveCapacity(columnCount)
        for column in 0..<columnCount {
            columns.append(String(cString: PQfname(result, Int32(column))))
        }
        var rows: [[String?]] = []
        rows.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(columnCount)
            for column in 0..<columnCount {
                if PQgetisnull(result, Int32(row), Int32(column)) == 1 {
                    values.append(nil)
                } else {
                    values.append(String(cString: PQgetvalue(result, Int32(row), Int32(column))))
                }
            }
            rows.append(values)
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresResult(columns: columns, rows: rows, affectedRows: affected)
    }

    private static func error(from result: OpaquePointer, connection: OpaquePointer) -> PostgresError {
        func field(_ code: Character) -> String? {
            guard let value = PQresultErrorField(result, Int32(code.asciiValue!)) else { return nil }
            return String(cString: value)
        }
        let state = field("C")
        let message = field("M") ?? libpqMessage(connection)
        let isCopy = (field("W") ?? "").hasPrefix("COPY ")
        // A broken connection comes back as a fatal result without a SQLSTATE: that is a connection error.
        let lost = PQstatus(connection) == CONNECTION_BAD || state == nil
        return PostgresError(
            code: lost || state?.hasPrefix("08") == true ? .connection : (isCopy ? .copy : .statement),
            sqlState: state, serverMessage: message, detail: field("D"), hint: field("H"), context: field("W"))
    }

    private static func libpqMessage(_ connection: OpaquePointer) -> String {
        guard let message = PQerrorMessage(connection) else { return "unknown libpq error" }
        return String(cString: message).trimmingTrailingNewlines()
    }

    private static func withCStrings<R>(_ values: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
        let copies = values.map { $0.map { strdup($0)! } }
        defer { copies.forEach { $0.map { free($0) } } }
        return body(copies.map { $0.map { UnsafePointer($0) } })
    }
}

extension String {
    fileprivate func trimmingTrailingNewlines() -> String {
        var text = self
        while text.last == "\n" { text.removeLast() }
        return text
    }
}
