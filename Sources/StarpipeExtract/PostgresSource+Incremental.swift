import StarpipeCore
import StarpipePostgres

extension PostgresSource {
    /// `min(now, xact_start of every other transaction in this database)`, read in its own statement just before the
    /// snapshot's transaction begins. Read inside the snapshot it would miss a transaction that commits between the
    /// snapshot and the read of pg_stat_activity: invisible to the snapshot and gone from the view. Read before, every
    /// transaction the snapshot cannot see either was listed (so the minimum is at most its start, and its `now()`)
    /// or began after this statement did.
    ///
    /// A role without `pg_read_all_stats` sees other roles' sessions as `<insufficient privilege>`, with no
    /// `backend_type` and no `xact_start`; nobody sees the `xact_start` of a session with `track_activities` off
    /// (state `disabled`). Then no safe point can be proven and this throws, naming the fix.
    func safePoint() throws -> Watermark {
        let result = try connection.query("""
            SELECT pg_catalog.to_char(LEAST(pg_catalog.statement_timestamp(), pg_catalog.min(a.xact_start)) AT TIME ZONE 'UTC',
                                      'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS safe,
                   pg_catalog.count(*) FILTER (WHERE a.backend_type IS NULL
                                                    OR (a.backend_type = 'client backend' AND a.state = 'disabled')) AS unseen,
                   current_user AS role
              FROM pg_catalog.pg_stat_activity a
             WHERE a.datid = (SELECT d.oid FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database())
               AND a.pid <> pg_catalog.pg_backend_pid()
            """)
        let unseen = Int(result.value(0, "unseen") ?? "0") ?? 0
        guard unseen == 0 else {
            throw StarpipeError(.source, "the source role \(result.value(0, "role") ?? "") cannot see when \(unseen) other session(s) of this database began their transactions (pg_stat_activity.xact_start), so no safe high watermark exists and nothing was written; GRANT pg_read_all_stats TO the role (and keep track_activities on)")
        }
        guard let text = result.value(0, "safe"), let safe = Watermark(text) else {
            throw StarpipeError(.source, "the source's clock gave no usable safe point")
        }
        return safe
    }

    func nullCursorRows(of table: PostgresTable, cursor: TableCursor) throws -> Int64 {
        Int64(try connection.query(table.nullCursorCountQuery(schema: schema ?? "public", cursor: cursor)).scalar ?? "0") ?? 0
    }

    func readRows(of table: PostgresTable, cursor: TableCursor, from low: Watermark?, includingNullCursor: Bool, pageSize: Int,
                  _ row: (UnsafeRawBufferPointer) throws -> Void) throws {
        let type = try cursor.check(table)
        try readPages(of: table, keyset: table.incrementalKeyset(cursor: cursor, type: type, low: low?.description),
                      pageSize: pageSize, row)
        if includingNullCursor {
            try readPages(of: table, keyset: table.nullCursorKeyset(cursor: cursor), pageSize: pageSize, row)
        }
    }
}
