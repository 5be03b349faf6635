import CMariaDB
import Foundation
import StarpipeCore

/// A client's MySQL or MariaDB database through the MariaDB Connector/C: one `START TRANSACTION WITH CONSISTENT
/// SNAPSHOT, READ ONLY` at REPEATABLE READ (InnoDB's snapshot; MyISAM tables have none), session time zone UTC,
/// connection charset utf8mb4 (latin1 and other columns arrive converted to UTF-8; binary strings as they are).
/// Values come through the text protocol and are encoded as JSON here.
final class MariaDBSource: ExtractionSource {
    private(set) var kind = "mariadb"
    let database: String?
    let schema: String? = nil
    /// The server's `VERSION()`.
    private(set) var version: String?
    private var handle: UnsafeMutablePointer<MYSQL>
    private let address: MariaDBAddress
    private let retry: SourceRetry

    /// Connects (one try; ``Extractor`` retries). `retry` paces the retries of a page.
    init(address: MariaDBAddress, retry: SourceRetry) throws {
        self.address = address
        self.retry = retry
        database = address.database
        handle = try Self.connect(address)
    }

    private static func connect(_ address: MariaDBAddress) throws -> UnsafeMutablePointer<MYSQL> {
        guard let handle = mysql_init(nil) else { throw StarpipeError(.source, "cannot start the MariaDB client: out of memory") }
        var timeout: UInt32 = 10
        mysql_options(handle, MYSQL_OPT_CONNECT_TIMEOUT, &timeout)
        mysql_options(handle, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        if address.tls != .disable {
            var on: UInt8 = 1
            mysql_options(handle, MYSQL_OPT_SSL_ENFORCE, &on)
            if address.tls == .verifyFull {
                mysql_options(handle, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on)
                if let ca = address.rootCertificate { mysql_options(handle, MYSQL_OPT_SSL_CA, ca) }
            }
        }
        guard mysql_real_connect(handle, address.host, address.user, address.password, address.database, address.port,
                                 nil, 0) != nil else {
            let message = String(cString: mysql_error(handle))
            let code = mysql_errno(handle)
            mysql_close(handle)
            throw SourceConnectionError(message: "cannot connect to the source database \(address): \(message)",
                                        isTransient: !permanentConnectErrors.contains(code))
        }
        return handle
    }

    func reconnect() throws {
        let fresh = try Self.connect(address)
        mysql_close(handle)
        handle = fresh
    }

    /// Client and server error numbers of a connection gone with its snapshot: server gone away (2006), lost during a
    /// query (2013), killed (1927), disconnected for inactivity (4031).
    private static let connectionLostErrors: Set<UInt32> = [2006, 2013, 1927, 4031]

    /// Error numbers of a statement that failed alone, its transaction and snapshot intact, so the page may be read
    /// again: interrupted (1317, `KILL QUERY`), over max_statement_time (1969) or max_execution_time (3024), out of
    /// memory for a sort or the result (1037, 1038, 1041).
    private static let retryableStatementErrors: Set<UInt32> = [1317, 1969, 3024, 1037, 1038, 1041]

    /// Whether the last failure lost the connection; read from the handle, whose error stays until its next call.
    func isConnectionLost(_ error: any Error) -> Bool {
        Self.connectionLostErrors.contains(mysql_errno(handle))
    }

    deinit { mysql_close(handle) }

    /// Client and server error numbers of a connection that time cannot cure: access denied (1044, 1045, 1698), an
    /// unknown database (1049), a host blocked or not allowed (1129, 1130), a password that must be changed (1820,
    /// 1862), an unknown host (2005), TLS refused or not verified (2026). Others (refused, timed out, too many
    /// connections, lost during the handshake) may pass.
    private static let permanentConnectErrors: Set<UInt32> = [1044, 1045, 1049, 1129, 1130, 1698, 1820, 1862, 2005, 2026]

    func beginSnapshot() throws -> String {
        try execute("SET SESSION time_zone = '+00:00', SESSION net_write_timeout = 3600, SESSION net_read_timeout = 3600")
        try execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        try execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        let row = try rows("SELECT DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%fZ'), VERSION()").first ?? []
        version = row.count > 1 ? row[1] : nil
        kind = version?.contains("MariaDB") == false ? "mysql" : "mariadb"
        return (row.first ?? nil) ?? ""
    }

    func tableNames() throws -> [String] {
        try rows("""
            SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'
            """).compactMap { $0[0] }.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    func describe(_ table: String) throws -> MariaDBTable {
        let name = literal(table)
        let described = try rows("""
            SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION,
                   CHARACTER_MAXIMUM_LENGTH, CHARACTER_SET_NAME, COLLATION_NAME
              FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = \(name) ORDER BY ORDINAL_POSITION
            """)
        guard !described.isEmpty else {
            throw StarpipeError(.source, "source table \(table) does not exist or has no columns")
        }
        // MariaDB's JSON is LONGTEXT with a json_valid check; MySQL's is its own type.
        let checks = Set(try rows("""
            SELECT CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = \(name)
            """).compactMap { $0[0] })
        let key = try rows("""
            SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = \(name) AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION
            """).compactMap { $0[0] }
        var columns: [Manifest.Column] = []
        var kinds: [MariaDBTable.Kind] = []
        var literals: [String: MariaDBTable.KeyLiteral?] = [:]
        var collations: [String: (charset: String, collation: String)] = [:]
        for row in described {
            let column = row[0] ?? "", dataType = (row[1] ?? "").lowercased(), columnType = row[2] ?? ""
            if MariaDBTable.uncarriedTypes.contains(dataType) {
                throw StarpipeError(.source, "source table \(table) column \(column) has type \(columnType), whose values the extractor does not carry; nothing was written. Leave the table out (--tables) or change the column's type")
            }
            let isJSON = checks.contains("json_valid(`\(column.replacingOccurrences(of: "`", with: "``"))`)")
            guard let mapped = MariaDBTable.mapping(
                dataType: dataType, columnType: columnType, precision: row[4].flatMap { Int($0) },
                scale: row[5].flatMap { Int($0) }, datetimePrecision: row[6].flatMap { Int($0) },
                length: row[7].flatMap { Int($0) }, isJSON: isJSON) else {
                throw StarpipeError(.source, "source table \(table) column \(column) has type \(columnType), which the extractor does not know; nothing was written. Leave the table out (--tables) or change the column's type")
            }
            columns.append(Manifest.Column(name: column, type: mapped.type, nullable: row[3] == "YES", sourceType: columnType,
                                           encoding: mapped.kind == .bytes ? Manifest.Column.base64 : nil))
            kinds.append(mapped.kind)
            switch (dataType, mapped.kind) {
            case ("float", _), ("bit", _), (_, .json): literals[column] = .some(nil)
            case (_, .number): literals[column] = .number
            case (_, .bytes): literals[column] = .bytes
            case ("char", _), ("varchar", _), ("tinytext", _), ("text", _), ("mediumtext", _), ("longtext", _):
                literals[column] = .string
                if let charset = row[8], let collation = row[9] { collations[column] = (charset, collation) }
            case (_, .date), (_, .datetime), (_, .timestamp): literals[column] = .string
            default: literals[column] = .some(nil)
            }
        }
        let keyLiterals = key.compactMap { literals[$0] ?? nil }
        return MariaDBTable(name: table, columns: columns, primaryKey: key, kinds: kinds,
                            keyLiterals: key.isEmpty || keyLiterals.count < key.count ? nil : keyLiterals,
                            collations: collations)
    }

    func estimatedRows(of table: MariaDBTable) throws -> Int64? {
        let estimate = try rows("""
            SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = \(literal(table.name))
            """).first ?? []
        return (estimate.first ?? nil).flatMap { Int64($0) }
    }

    func readRows(of table: MariaDBTable, pageSize: Int, _ row: (UnsafeRawBufferPointer) throws -> Void) throws {
        let values = selectList(table)
        let relation = Self.quote(table.name)
        var writer = JSONRowWriter(table: table.name, columns: table.columns.map(\.name))
        guard let literals = table.keyLiterals else {
            // No key, or one that cannot be compared exactly: one streamed query, in a deterministic order.
            let order = (table.primaryKey.isEmpty ? table.columns.map(\.name) : table.primaryKey).map(Self.quote)
            _ = try stream("SELECT \(values.joined(separator: ", ")) FROM \(relation) ORDER BY \(order.joined(separator: ", "))",
                           table: table.name) { fields, lengths in
                try encode(fields, lengths, offset: 0, table: table, into: &writer)
                try writer.bytes.withUnsafeBytes { try row($0) }
            }
            return
        }
        let keys = table.primaryKey.map(Self.quote)
        let select = "SELECT \((keys + values).joined(separator: ", ")) FROM \(relation)"
        let order = "ORDER BY \(keys.joined(separator: ", ")) LIMIT \(pageSize)"
        var condition = ""
        while true {
            var last: [String] = []
            let count = try stream("\(select)\(condition) \(order)", table: table.name) { fields, lengths in
                try encode(fields, lengths, offset: keys.count, table: table, into: &writer)
                try writer.bytes.withUnsafeBytes { try row($0) }
                last = (0..<keys.count).map { index in
                    keyLiteral(fields[index], Int(lengths[index]), literals[index], column: table.primaryKey[index],
                               collation: table.collations[table.primaryKey[index]])
                }
            }
            guard count == pageSize else { return }
            condition = " WHERE (\(keys.joined(separator: ", "))) > (\(last.joined(separator: ", ")))"
        }
    }

    /// The row's values from `offset` on, as one JSON object in the writer.
    /// The select expression of each column, in column order: FLOAT as DOUBLE, BIT as its binary digits.
    func selectList(_ table: MariaDBTable) -> [String] {
        zip(table.columns, table.kinds).map { column, kind in
            let name = Self.quote(column.name)
            switch kind {
            case .float: return "CAST(\(name) AS DOUBLE)"
            case .bits(let width): return "LPAD(BIN(\(name)), \(width), '0')"
            default: return name
            }
        }
    }

    func encode(_ fields: MYSQL_ROW, _ lengths: UnsafeMutablePointer<UInt>, offset: Int, table: MariaDBTable,
                        into writer: inout JSONRowWriter) throws {
        writer.beginRow()
        for (index, kind) in table.kinds.enumerated() {
            writer.key(index)
            guard let pointer = fields[offset + index] else { writer.null(); continue }
            let text = UnsafeBufferPointer(start: UnsafeRawPointer(pointer).assumingMemoryBound(to: UInt8.self),
                                           count: Int(lengths[offset + index]))
            switch kind {
            case .number, .float:
                // ZEROFILL columns print leading zeros, which JSON numbers do not allow.
                var start = 0
                while text.count - start > 1, text[start] == UInt8(ascii: "0"), text[start + 1] != UInt8(ascii: ".") { start += 1 }
                writer.verbatim(UnsafeBufferPointer(rebasing: text[start...]))
            case .bits: writer.string(String(decoding: text, as: UTF8.self))
            case .string, .json: try writer.string(text, column: index)
            case .bytes: writer.base64(text)
            case .date, .datetime, .timestamp:
                try writeTemporal(text, kind: kind, column: index, into: &writer)
            }
        }
        writer.endRow()
    }

    /// A DATE, DATETIME or TIMESTAMP: the zero value as `-infinity` (docs/TYPES.md); a date with a zero year,
    /// month or day is refused, since no Postgres date holds it.
    private func writeTemporal(_ text: UnsafeBufferPointer<UInt8>, kind: MariaDBTable.Kind, column: Int,
                               into writer: inout JSONRowWriter) throws {
        var value = Array(text)
        guard value.count >= 10 else { throw writer.error(column: column, "the value is not a date") }
        if value.allSatisfy({ $0 == UInt8(ascii: "0") || !(0x30...0x39).contains($0) }) {
            return writer.string("-infinity")
        }
        let zero: (Int) -> Bool = { value[$0] == UInt8(ascii: "0") && value[$0 + 1] == UInt8(ascii: "0") }
        if zero(5) || zero(8) || value[0...3].allSatisfy({ $0 == UInt8(ascii: "0") }) {
            throw writer.error(column: column, "the value is a date with a zero year, month or day, which no Postgres date holds")
        }
        if kind != .date, value.count > 10 { value[10] = UInt8(ascii: "T") }
        var string = String(decoding: value, as: UTF8.self)
        if kind == .timestamp { string += "+00:00" }
        writer.string(string)
    }

    /// A key value as SQL for the next page's condition.
    func keyLiteral(_ field: UnsafeMutablePointer<CChar>?, _ length: Int, _ literal: MariaDBTable.KeyLiteral,
                            column: String, collation: (charset: String, collation: String)?) -> String {
        guard let field else { return "NULL" }
        let bytes = UnsafeBufferPointer(start: UnsafeRawPointer(field).assumingMemoryBound(to: UInt8.self), count: length)
        switch literal {
        case .number: return String(decoding: bytes, as: UTF8.self)
        case .bytes: return "X'" + bytes.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() + "'"
        case .string:
            var escaped = [CChar](repeating: 0, count: length * 2 + 1)
            let count = mysql_real_escape_string(handle, &escaped, field, UInt(length))
            let quoted = "'" + String(decoding: escaped[0..<Int(count)].map { UInt8(bitPattern: $0) }, as: UTF8.self) + "'"
            guard let collation else { return quoted }
            return "CONVERT(\(quoted) USING \(collation.charset)) COLLATE \(collation.collation)"
        }
    }

    func close() {
        try? execute("ROLLBACK")
    }

    /// `` `name` ``, with inner backquotes doubled.
    static func quote(_ name: String) -> String {
        "`" + name.replacingOccurrences(of: "`", with: "``") + "`"
    }

    /// A string literal for catalog queries.
    func literal(_ text: String) -> String {
        var escaped = [CChar](repeating: 0, count: text.utf8.count * 2 + 1)
        let count = mysql_real_escape_string(handle, &escaped, text, UInt(text.utf8.count))
        return "'" + String(decoding: escaped[0..<Int(count)].map { UInt8(bitPattern: $0) }, as: UTF8.self) + "'"
    }

    func execute(_ sql: String) throws {
        guard mysql_real_query(handle, sql, UInt(sql.utf8.count)) == 0 else { throw failure("running a session statement") }
        if let result = mysql_store_result(handle) { mysql_free_result(result) }
    }

    /// Rows of a catalog query, as text.
    func rows(_ sql: String) throws -> [[String?]] {
        guard mysql_real_query(handle, sql, UInt(sql.utf8.count)) == 0, let result = mysql_store_result(handle) else {
            throw failure("reading the catalog")
        }
        defer { mysql_free_result(result) }
        let count = Int(mysql_num_fields(result))
        var rows: [[String?]] = []
        while let row = mysql_fetch_row(result) {
            let lengths = mysql_fetch_lengths(result)!
            rows.append((0..<count).map { index in
                row[index].map { String(decoding: UnsafeRawBufferPointer(start: $0, count: Int(lengths[index])), as: UTF8.self) }
            })
        }
        return rows
    }

    /// Streams a data query's rows (`mysql_use_result`: memory holds one row); returns how many there were. Its
    /// errors name the table and the server's error number, not its message, which may quote a key value.
    /// A page that fails alone (``retryableStatementErrors``) is run again after a backoff, in the same snapshot,
    /// skipping the rows already handed on.
    func stream(_ sql: String, table: String, _ body: (MYSQL_ROW, UnsafeMutablePointer<UInt>) throws -> Void) throws -> Int {
        var delivered = 0
        return try retry.run("read a page of table \(table)", transient: { _ in Self.retryableStatementErrors.contains(mysql_errno(handle)) }) {
            guard mysql_real_query(handle, sql, UInt(sql.utf8.count)) == 0, let result = mysql_use_result(handle) else {
                throw dataFailure(table)
            }
            defer { mysql_free_result(result) }
            var count = 0
            while let row = mysql_fetch_row(result) {
                count += 1
                guard count > delivered else { continue }
                try body(row, mysql_fetch_lengths(result)!)
                delivered += 1
            }
            guard mysql_errno(handle) == 0 else { throw dataFailure(table) }
            return count
        }
    }

    private func failure(_ doing: String) -> StarpipeError {
        StarpipeError(.source, "MariaDB source \(address): \(doing) failed: \(String(cString: mysql_error(handle)))")
    }

    private func dataFailure(_ table: String) -> StarpipeError {
        StarpipeError(.source, "MariaDB source \(address): reading table \(table) failed with server error \(mysql_errno(handle)) (SQLSTATE \(String(cString: mysql_sqlstate(handle))))")
    }
}
