import StarpipeCore

/// A client database the extractor reads (Postgres, MySQL/MariaDB, SQLite), opened once per run.
///
/// A source reads every table in one consistent snapshot, describes a table before anything is written, and hands
/// over its rows in primary-key order (or its own stable order for a keyless table), each as one JSON object.
protocol ExtractionSource: AnyObject {
    /// The source's description of one table.
    associatedtype Table: ExtractedTable

    /// The manifest's `source.kind`: `postgres`, `mariadb`, `mysql` or `sqlite`.
    var kind: String { get }
    /// The database name the manifest records.
    var database: String? { get }
    /// The schema the manifest records.
    var schema: String? { get }
    /// The server's version, known once the snapshot has begun.
    var version: String? { get }

    /// Opens the snapshot every table is read in and returns its time: RFC 3339, UTC, microseconds.
    func beginSnapshot() throws -> String
    /// The tables a run reads when `--tables` is not given, in name order.
    func tableNames() throws -> [String]
    /// Reads a table's columns and key. Throws, naming the table and column, for values it cannot carry.
    func describe(_ table: String) throws -> Table
    /// The source's estimate of the table's row count, for progress; nil when it has none.
    func estimatedRows(of table: Table) throws -> Int64?
    /// Hands each row of `table` to `row` as one JSON object (UTF-8), reading `pageSize` rows per query.
    func readRows(of table: Table, pageSize: Int, _ row: (UnsafeRawBufferPointer) throws -> Void) throws
    /// The instant before which every row the snapshot cannot see has a later cursor (docs/INCREMENTAL.md): taken
    /// just before ``beginSnapshot()``. Sources without one throw, naming the source kind.
    func safePoint() throws -> Watermark
    /// How many rows of `table` have a NULL cursor (every column of it NULL), in the snapshot.
    func nullCursorRows(of table: Table, cursor: TableCursor) throws -> Int64
    /// Hands each row whose cursor is at or after `low` (every row with a cursor when nil) to `row`, in (cursor,
    /// primary key) order, `pageSize` rows per query; then, with `includingNullCursor`, the rows whose cursor is
    /// NULL, in primary key order. The caller has checked the cursor and that the table has a primary key.
    func readRows(of table: Table, cursor: TableCursor, from low: Watermark?, includingNullCursor: Bool, pageSize: Int,
                  _ row: (UnsafeRawBufferPointer) throws -> Void) throws
    /// Ends the snapshot and the connection.
    func close()
    /// Opens a new connection after ``isConnectionLost(_:)`` (one try; the caller retries); a snapshot is begun again.
    func reconnect() throws
    /// Whether `error` means the connection (and with it the snapshot) is gone, so a table being read must be read
    /// again from its start on a new connection.
    func isConnectionLost(_ error: any Error) -> Bool
}

extension ExtractionSource {
    /// Sources whose reads do not cross a network (SQLite) never lose a connection.
    func reconnect() throws {
        throw StarpipeError(.source, "the \(kind) source cannot reconnect")
    }

    func isConnectionLost(_ error: any Error) -> Bool { false }
}

/// What every source's table description gives the manifest.
protocol ExtractedTable {
    /// Name at the source, case preserved.
    var name: String { get }
    /// Columns in source order, with manifest types.
    var columns: [Manifest.Column] { get }
    /// Primary key column names in key order; empty when the table has none.
    var primaryKey: [String] { get }
}
