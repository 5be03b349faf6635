import StarpipePostgres

extension PostgresTable {
    /// The cursor expression over `_starpipe_row`: the column, or `coalesce` of the columns in order. An index on the
    /// same expression followed by the primary key makes the incremental page queries index scans.
    func cursorExpression(_ cursor: TableCursor) -> String {
        let columns = cursor.columns.map { "_starpipe_row.\(PostgresConnection.quoteIdentifier($0))" }
        return columns.count == 1 ? columns[0] : "COALESCE(\(columns.joined(separator: ", ")))"
    }

    /// The incremental variant of ``pageQuery(schema:)``, the same shape: the keyset values first as text (the cursor,
    /// then the primary key), then the row; `$1` is the page size, `next`'s `$2…` the last page's keyset values cast
    /// to their types. With `bounded`, `first` reads from its `$2`, an RFC 3339 instant (the low watermark),
    /// inclusive; otherwise every row whose cursor is not NULL. `type` is the cursor's type (``TableCursor/check(_:)``).
    func incrementalPageQuery(schema: String, cursor: TableCursor, type: String, bounded: Bool)
        -> (first: String, next: String, keyCount: Int) {
        let row = "_starpipe_row"
        let (from, json) = rowSource(schema: schema)
        let expression = cursorExpression(cursor)
        let keys = primaryKey.map { "\(row).\(PostgresConnection.quoteIdentifier($0))" }
        let select = "SELECT (\(expression))::text, \(keys.map { "\($0)::text" }.joined(separator: ", ")), \(json) FROM \(from)"
        let order = "ORDER BY \(([expression] + keys).joined(separator: ", "))"
        // The low watermark is an instant; a zone-less cursor is compared with it as the application's local time.
        // The zone is a checked name (TableCursor.isZoneName), so it can stand as a literal.
        let low = cursor.timeZone.map { "($2::timestamp with time zone AT TIME ZONE '\($0)')" }
            ?? "$2::timestamp with time zone"
        let start = bounded ? "\(expression) >= \(low)" : "\(expression) IS NOT NULL"
        let parameters = ([type] + keyTypes).enumerated().map { "$\($0.offset + 2)::\($0.element)" }
        // (cursor, key) > (last) also excludes NULL cursors and stays at or after the low watermark.
        return ("\(select) WHERE \(start) \(order) LIMIT $1",
                "\(select) WHERE (\(([expression] + keys).joined(separator: ", "))) > (\(parameters.joined(separator: ", "))) \(order) LIMIT $1",
                1 + primaryKey.count)
    }

    /// The rows whose cursor is NULL, in ``pageQuery(schema:)``'s shape, on the primary key.
    func nullCursorPageQuery(schema: String, cursor: TableCursor) -> (first: String, next: String, keyCount: Int) {
        let row = "_starpipe_row"
        let (from, json) = rowSource(schema: schema)
        let expression = cursorExpression(cursor)
        let keys = primaryKey.map { "\(row).\(PostgresConnection.quoteIdentifier($0))" }
        let select = "SELECT \(keys.map { "\($0)::text" }.joined(separator: ", ")), \(json) FROM \(from)"
        let order = "ORDER BY \(keys.joined(separator: ", "))"
        let parameters = keyTypes.enumerated().map { "$\($0.offset + 2)::\($0.element)" }
        return ("\(select) WHERE \(expression) IS NULL \(order) LIMIT $1",
                "\(select) WHERE \(expression) IS NULL AND (\(keys.joined(separator: ", "))) > (\(parameters.joined(separator: ", "))) \(order) LIMIT $1",
                primaryKey.count)
    }

    /// Counts the rows whose cursor is NULL.
    func nullCursorCountQuery(schema: String, cursor: TableCursor) -> String {
        let relation = PostgresConnection.quoteIdentifier(schema) + "." + PostgresConnection.quoteIdentifier(name)
        return "SELECT pg_catalog.count(*) FROM \(relation) AS _starpipe_row WHERE \(cursorExpression(cursor)) IS NULL"
    }
}
