import CSQLite
import Foundation
import StarpipeCore

/// A client's SQLite file, opened read-only and read in one read transaction (`BEGIN`, then the first read), which
/// sees one snapshot of the file for the whole run: in WAL mode while writers go on, in rollback-journal mode by
/// holding the shared lock that keeps writers from committing.
final class SQLiteSource: ExtractionSource {
    let kind = "sqlite"
    let database: String?
    let schema: String? = "main"
    let version: String? = String(cString: sqlite3_libversion())
    private let path: String
    private var handle: OpaquePointer?

    init(path: String) throws {
        self.path = path
        database = URL(fileURLWithPath: path).lastPathComponent
        guard FileManager.default.fileExists(atPath: path) else {
            throw StarpipeError(.source, "the SQLite source file \(path) does not exist")
        }
        let status = sqlite3_open_v2(path, &handle, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil)
        guard status == SQLITE_OK else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(handle)
            handle = nil
            throw StarpipeError(.source, "cannot open the SQLite source file \(path): \(message)")
        }
        // A writer holding its lock makes a reader wait, not fail.
        sqlite3_busy_timeout(handle, 30_000)
    }

    deinit { sqlite3_close(handle) }

    func beginSnapshot() throws -> String {
        try execute("BEGIN")
        // The read transaction, and with it the snapshot, starts at the first read.
        _ = try rows("SELECT count(*) FROM sqlite_schema")
        return RFC3339.utcMicroseconds(Date())
    }

    func tableNames() throws -> [String] {
        try rows("""
            SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
             ORDER BY name
            """).map { $0[0] ?? "" }
    }

    func describe(_ table: String) throws -> SQLiteTable {
        let kind = try rows("SELECT type, wr FROM pragma_table_list WHERE schema = 'main' AND name = ?", [table])
        guard let first = kind.first, first[0] == "table" else {
            throw StarpipeError(.source, "source table \(table) does not exist in the SQLite file (views and virtual tables are not read)")
        }
        // hidden: 0 an ordinary column, 2 and 3 generated columns (virtual, stored).
        let described = try rows("""
            SELECT name, type, "notnull", pk FROM pragma_table_xinfo(?) WHERE hidden IN (0, 2, 3) ORDER BY cid
            """, [table])
        guard !described.isEmpty else {
            throw StarpipeError(.source, "source table \(table) has no columns")
        }
        let names = described.map { $0[0] ?? "" }
        let relation = Self.quote(table)
        var kinds: [SQLiteTable.Kind?] = described.map { SQLiteTable.Kind(declared: $0[1] ?? "") }
        // An untyped column takes the kind of what it holds.
        for (index, name) in names.enumerated() where kinds[index] == nil {
            let classes = try rows("SELECT DISTINCT typeof(\(Self.quote(name))) FROM \(relation)").compactMap { $0[0] }
            guard let kind = SQLiteTable.Kind(storageClasses: Set(classes)) else {
                throw StarpipeError(.source, "source table \(table) column \(name) has no declared type and holds values of several storage classes (\(classes.sorted().joined(separator: ", "))), which one column cannot carry; nothing was written. Declare its type at the source or leave the table out (--tables)")
            }
            kinds[index] = kind
        }
        let resolved = kinds.map { $0! }
        let primaryKey = described.filter { ($0[3] ?? "0") != "0" }.sorted { Int($0[3]!)! < Int($1[3]!)! }.map { $0[0]! }
        var pageKey = primaryKey
        if pageKey.isEmpty {
            guard first[1] == "0", let alias = ["rowid", "_rowid_", "oid"].first(where: { alias in
                !names.contains { $0.caseInsensitiveCompare(alias) == .orderedSame }
            }) else {
                throw StarpipeError(.source, "source table \(table) has no primary key and its columns hide the rowid; it cannot be paged")
            }
            pageKey = [alias]
        }
        let order = pageKey.map(Self.quote).joined(separator: ", ")
        // Every value is checked before anything is written: one scan counts, per column, the values its kind
        // cannot carry; the first offending row is then named by its position in the file (key order).
        let checks = zip(names, resolved).map { name, kind in "sum(NOT \(kind.accepts(Self.quote(name))))" }
        let counts = try rows("SELECT \(checks.joined(separator: ", ")) FROM \(relation)").first ?? []
        for (index, count) in counts.enumerated() where (Int(count ?? "0") ?? 0) > 0 {
            let column = Self.quote(names[index])
            let offending = try rows("""
                SELECT n, t FROM (SELECT row_number() OVER (ORDER BY \(order)) AS n, typeof(\(column)) AS t,
                                         \(resolved[index].accepts(column)) AS ok FROM \(relation)) WHERE NOT ok ORDER BY n LIMIT 1
                """).first
            throw StarpipeError(.source, "source table \(table) row \(offending?[0] ?? "?") column \(names[index]) (declared \(described[index][1].flatMap { $0.isEmpty ? nil : $0 } ?? "without a type")) holds a value (storage class \(offending?[1] ?? "?")) that it cannot carry: it takes \(resolved[index].expectation); \(count ?? "?") such values in all. Nothing was written: fix the values or declare the column's real type at the source (TEXT carries anything as text), or leave the table out (--tables)")
        }
        return SQLiteTable(
            name: table,
            columns: zip(described, resolved).map { column, kind in
                // A lone INTEGER PRIMARY KEY is the rowid, never NULL; other key columns of a rowid table may be.
                Manifest.Column(name: column[0]!, type: kind.manifestType,
                                nullable: column[2] == "0" && !(primaryKey == [column[0]!] && column[1]?.uppercased() == "INTEGER"),
                                sourceType: column[1].flatMap { $0.isEmpty ? nil : $0 },
                                encoding: kind == .blob ? Manifest.Column.base64 : nil)
            },
            primaryKey: primaryKey, pageKey: pageKey, kinds: resolved)
    }

    func estimatedRows(of table: SQLiteTable) throws -> Int64? {
        (try rows("SELECT count(*) FROM \(Self.quote(table.name))").first?.first ?? nil).flatMap { Int64($0) }
    }

    func readRows(of table: SQLiteTable, pageSize: Int, _ row: (UnsafeRawBufferPointer) throws -> Void) throws {
        let keys = table.pageKey.map(Self.quote)
        let select = "SELECT \((keys + table.columns.map { Self.quote($0.name) }).joined(separator: ", ")) FROM \(Self.quote(table.name))"
        let order = "ORDER BY \(keys.joined(separator: ", ")) LIMIT ?"
        let placeholders = Array(repeating: "?", count: keys.count).joined(separator: ", ")
        let first = try prepare("\(select) \(order)")
        defer { sqlite3_finalize(first) }
        let next = try prepare("\(select) WHERE (\(keys.joined(separator: ", "))) > (\(placeholders)) \(order)")
        defer { sqlite3_finalize(next) }
        var writer = JSONRowWriter(table: table.name, columns: table.columns.map(\.name))
        var last: [OpaquePointer?] = []
        defer { last.forEach { sqlite3_value_free($0) } }
        var statement = first
        while true {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
            for (index, value) in last.enumerated() { sqlite3_bind_value(statement, Int32(index + 1), value) }
            sqlite3_bind_int64(statement, Int32(last.count + 1), Int64(pageSize))
            var count = 0
            while true {
                let status = sqlite3_step(statement)
                if status == SQLITE_DONE { break }
                guard status == SQLITE_ROW else { throw failure("reading table \(table.name)") }
                count += 1
                writer.beginRow()
                for (index, kind) in table.kinds.enumerated() {
                    writer.key(index)
                    try write(statement!, column: Int32(keys.count + index), kind: kind, index: index, into: &writer)
                }
                writer.endRow()
                try writer.bytes.withUnsafeBytes { try row($0) }
                if count == pageSize {
                    last.forEach { sqlite3_value_free($0) }
                    last = (0..<keys.count).map { sqlite3_value_dup(sqlite3_column_value(statement, Int32($0))) }
                }
            }
            guard count == pageSize else { break }
            statement = next
        }
    }

    private func write(_ statement: OpaquePointer, column: Int32, kind: SQLiteTable.Kind, index: Int,
                       into writer: inout JSONRowWriter) throws {
        let type = sqlite3_column_type(statement, column)
        if type == SQLITE_NULL { return writer.null() }
        switch (kind, type) {
        case (.integer, SQLITE_INTEGER), (.numeric, SQLITE_INTEGER), (.real, SQLITE_INTEGER):
            writer.verbatim(String(sqlite3_column_int64(statement, column)))
        case (.real, SQLITE_FLOAT), (.numeric, SQLITE_FLOAT):
            writer.double(sqlite3_column_double(statement, column))
        case (.boolean, SQLITE_INTEGER):
            writer.boolean(sqlite3_column_int64(statement, column) != 0)
        case (.text, SQLITE_TEXT), (.date, SQLITE_TEXT):
            try writer.string(Self.text(statement, column), column: index)
        case (.datetime, SQLITE_TEXT):
            // Validated before the run: ASCII `YYYY-MM-DD HH:MM:SS[.f]`, written with the ISO `T`.
            var text = Array(Self.text(statement, column))
            text[10] = UInt8(ascii: "T")
            text.withUnsafeBufferPointer { writer.string(String(decoding: $0, as: UTF8.self)) }
        case (.blob, SQLITE_BLOB):
            let count = Int(sqlite3_column_bytes(statement, column))
            let start = sqlite3_column_blob(statement, column)?.assumingMemoryBound(to: UInt8.self)
            writer.base64(UnsafeBufferPointer(start: start, count: count))
        default:
            throw writer.error(column: index, "the value's storage class does not fit the column's type")
        }
    }

    private static func text(_ statement: OpaquePointer, _ column: Int32) -> UnsafeBufferPointer<UInt8> {
        let start = sqlite3_column_text(statement, column)
        return UnsafeBufferPointer(start: start, count: Int(sqlite3_column_bytes(statement, column)))
    }

    func close() {
        try? execute("ROLLBACK")
    }

    /// `"name"`, with inner quotes doubled.
    static func quote(_ name: String) -> String {
        "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    private func execute(_ sql: String) throws {
        guard sqlite3_exec(handle, sql, nil, nil, nil) == SQLITE_OK else { throw failure("running \(sql)") }
    }

    private func prepare(_ sql: String) throws -> OpaquePointer? {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK else {
            throw failure("preparing a query")
        }
        return statement
    }

    /// Rows of a catalog query, every value as text (NULL as nil). Parameters are bound as text.
    private func rows(_ sql: String, _ parameters: [String] = []) throws -> [[String?]] {
        let statement = try prepare(sql)
        defer { sqlite3_finalize(statement) }
        for (index, parameter) in parameters.enumerated() {
            sqlite3_bind_text(statement, Int32(index + 1), parameter, -1, starpipe_sqlite_transient())
        }
        var result: [[String?]] = []
        while true {
            let status = sqlite3_step(statement)
            if status == SQLITE_DONE { return result }
            guard status == SQLITE_ROW else { throw failure("reading the catalog") }
            result.append((0..<sqlite3_column_count(statement)).map { column in
                sqlite3_column_text(statement, column).map { String(cString: $0) }
            })
        }
    }

    /// SQLite's message for the last failure. Its messages name objects, not values.
    private func failure(_ doing: String) -> StarpipeError {
        StarpipeError(.source, "SQLite source \(database ?? path): \(doing) failed: \(String(cString: sqlite3_errmsg(handle)))")
    }
}
