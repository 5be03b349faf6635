import StarpipePostgres

extension PostgresTable {
    /// The cursor expression over `_starpipe_row`: the column, or `coalesce` of the columns in order. An index on the
    /// same expression followed by the primary key makes the incremental pages index scans.
    func cursorExpression(_ cursor: TableCursor) -> String {
        let columns = cursor.columns.map { "_starpipe_row.\(PostgresConnection.quoteIdentifier($0))" }
        return columns.count == 1 ? columns[0] : "COALESCE(\(columns.joined(separator: ", ")))"
    }

    /// The keyset of an incremental read: the cursor, then the primary key. With `low` (an RFC 3339 instant, the low
    /// watermark) the rows whose cursor is at or after it; otherwise every row whose cursor is not NULL (a first
    /// run). `type` is the cursor's type (``TableCursor/check(_:)``). `(cursor, key) > (last)` also excludes NULL
    /// cursors and stays at or after the low watermark.
    func incrementalKeyset(cursor: TableCursor, type: String, low: String?) -> PostgresKeyset {
        let expression = cursorExpression(cursor)
        // The low watermark is an instant; a zone-less cursor is compared with it as the application's local time.
        // The zone is a checked name (TableCursor.isZoneName), so it can stand as a literal.
        let instant = low.map { Self.literal($0) + "::timestamp with time zone" }
        let bound = instant.map { instant in cursor.timeZone.map { "(\(instant) AT TIME ZONE '\($0)')" } ?? instant }
        return PostgresKeyset(expressions: [expression] + fullKeyset.expressions, types: [type] + keyTypes,
                              filter: bound.map { "\(expression) >= \($0)" } ?? "\(expression) IS NOT NULL")
    }

    /// The rows whose cursor is NULL, on the primary key.
    func nullCursorKeyset(cursor: TableCursor) -> PostgresKeyset {
        var keyset = fullKeyset
        keyset.filter = "\(cursorExpression(cursor)) IS NULL"
        return keyset
    }

    /// Counts the rows whose cursor is NULL.
    func nullCursorCountQuery(schema: String, cursor: TableCursor) -> String {
        let relation = PostgresConnection.quoteIdentifier(schema) + "." + PostgresConnection.quoteIdentifier(name)
        return "SELECT pg_catalog.count(*) FROM \(relation) AS _starpipe_row WHERE \(cursorExpression(cursor)) IS NULL"
    }
}
