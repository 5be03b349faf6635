import CMariaDB
import StarpipeCore

extension MariaDBSource {
    /// `min(now, trx_started of every InnoDB transaction) - 1 second` from `information_schema.INNODB_TRX` (every
    /// database's, which only holds the watermark back), read just before the snapshot for the reason
    /// ``PostgresSource/safePoint()`` gives. The second: InnoDB serves the table from a cache refreshed at most every
    /// 0.1 s, so a transaction begun just before the read may be missing (it began after the refresh, so less than
    /// that before now); and `trx_started` has whole seconds while a statement's `NOW()` (MySQL's is the statement's
    /// start) can fall just before the second in which InnoDB starts its transaction. Reading the table needs the
    /// PROCESS privilege; without it this throws, naming the grant.
    func safePoint() throws -> Watermark {
        try execute("SET SESSION time_zone = '+00:00'")
        let row: [String?]
        do {
            row = try rows("""
                SELECT DATE_FORMAT(LEAST(UTC_TIMESTAMP(6), COALESCE(MIN(trx_started), UTC_TIMESTAMP(6))) - INTERVAL 1 SECOND,
                                   '%Y-%m-%dT%H:%i:%s.%fZ')
                  FROM information_schema.INNODB_TRX
                """).first ?? []
        } catch let error as StarpipeError {
            throw StarpipeError(.source, "the source user cannot read information_schema.INNODB_TRX, so no safe high watermark exists and nothing was written; GRANT PROCESS ON *.* TO the user (\(error.message))")
        }
        guard let text = row.first ?? nil, let safe = Watermark(text) else {
            throw StarpipeError(.source, "the source's clock gave no usable safe point")
        }
        return safe
    }

    func nullCursorRows(of table: MariaDBTable, cursor: TableCursor) throws -> Int64 {
        let count = try rows("SELECT COUNT(*) FROM \(Self.quote(table.name)) WHERE \(cursorExpression(cursor)) IS NULL").first ?? []
        return (count.first ?? nil).flatMap { Int64($0) } ?? 0
    }

    func readRows(of table: MariaDBTable, cursor: TableCursor, from low: Watermark?, includingNullCursor: Bool, pageSize: Int,
                  _ row: (UnsafeRawBufferPointer) throws -> Void) throws {
        let type = try cursor.check(table)
        guard let literals = table.keyLiterals else {
            throw StarpipeError(.configuration, "source table \(table.name)'s primary key has a column (FLOAT, BIT or JSON) that a keyset cannot compare exactly, so it cannot be read incrementally; remove incremental.tables.\(table.name.lowercased()) from the config")
        }
        let expression = cursorExpression(cursor)
        let keys = table.primaryKey.map(Self.quote)
        let relation = Self.quote(table.name)
        var writer = JSONRowWriter(table: table.name, columns: table.columns.map(\.name))
        func lastKeys(_ fields: MYSQL_ROW, _ lengths: UnsafeMutablePointer<UInt>, offset: Int) -> [String] {
            (0..<keys.count).map { index in
                keyLiteral(fields[offset + index], Int(lengths[offset + index]), literals[index], column: table.primaryKey[index],
                           collation: table.collations[table.primaryKey[index]])
            }
        }
        // The cursor first, as text the next page's condition reads back exactly (the session is in UTC, so a
        // TIMESTAMP prints as UTC; a DATETIME as it is stored).
        let select = "SELECT \((["DATE_FORMAT(\(expression), '%Y-%m-%d %H:%i:%s.%f')"] + keys + selectList(table)).joined(separator: ", ")) FROM \(relation)"
        let order = "ORDER BY \(([expression] + keys).joined(separator: ", ")) LIMIT \(pageSize)"
        var condition: String
        if let low {
            let bound = type.hasSuffix("without time zone") ? try low.localText(in: cursor.timeZone ?? "UTC") : low.sqlText
            condition = " WHERE \(expression) >= '\(bound)'"
        } else {
            condition = " WHERE \(expression) IS NOT NULL"
        }
        while true {
            var last: [String] = []
            let count = try stream("\(select)\(condition) \(order)", table: table.name) { fields, lengths in
                try encode(fields, lengths, offset: 1 + keys.count, table: table, into: &writer)
                try writer.bytes.withUnsafeBytes { try row($0) }
                last = ["'" + String(cString: fields[0]!) + "'"] + lastKeys(fields, lengths, offset: 1)
            }
            guard count == pageSize else { break }
            condition = " WHERE (\(([expression] + keys).joined(separator: ", "))) > (\(last.joined(separator: ", ")))"
        }
        guard includingNullCursor else { return }
        let nullSelect = "SELECT \((keys + selectList(table)).joined(separator: ", ")) FROM \(relation) WHERE \(expression) IS NULL"
        var after = ""
        while true {
            var last: [String] = []
            let count = try stream("\(nullSelect)\(after) ORDER BY \(keys.joined(separator: ", ")) LIMIT \(pageSize)", table: table.name) { fields, lengths in
                try encode(fields, lengths, offset: keys.count, table: table, into: &writer)
                try writer.bytes.withUnsafeBytes { try row($0) }
                last = lastKeys(fields, lengths, offset: 0)
            }
            guard count == pageSize else { return }
            after = " AND (\(keys.joined(separator: ", "))) > (\(last.joined(separator: ", ")))"
        }
    }

    /// The cursor column, or `COALESCE` of the columns in order.
    private func cursorExpression(_ cursor: TableCursor) -> String {
        let columns = cursor.columns.map(Self.quote)
        return columns.count == 1 ? columns[0] : "COALESCE(\(columns.joined(separator: ", ")))"
    }
}
