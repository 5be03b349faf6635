import StarpipeCore
import StarpipePostgres

/// A client's Postgres, read in one REPEATABLE READ READ ONLY transaction with the session settings that make its
/// output text independent of the server's defaults (docs/TYPES.md). Rows are written by the server's
/// `row_to_json`, one keyset page at a time.
final class PostgresSource: ExtractionSource {
    let kind = "postgres"
    private(set) var database: String?
    private(set) var version: String?
    let schema: String?
    let connection: PostgresConnection

    init(url: String, schema: String, password: String?) throws {
        do {
            connection = try PostgresConnection(url: url, applicationName: "starpipe-extract", password: password)
        } catch {
            throw StarpipeError(.source, "cannot connect to the source database: \(error)")
        }
        self.schema = schema
    }

    /// Whether rows would cross the network unencrypted: no TLS toward a host that is not this machine.
    var isPlainTextRemote: Bool { !connection.usesTLS && !connection.isLoopback }

    func beginSnapshot() throws -> String {
        try connection.execute("""
            BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
            SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'iso_8601';
            SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex'; SET LOCAL lc_monetary = 'C';
            """)
        // The first query takes the snapshot every table is read in; the time it reads is that snapshot's, to the
        // microsecond, so of two overlapping runs the one with the later snapshot is the newer (extracted_at).
        let snapshot = try connection.query("""
            SELECT pg_catalog.current_database() AS database, pg_catalog.current_setting('server_version') AS version,
                   pg_catalog.to_char(pg_catalog.clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS taken
            """)
        database = snapshot.value(0, "database")
        version = snapshot.value(0, "version")
        return snapshot.value(0, "taken") ?? ""
    }

    func tableNames() throws -> [String] {
        try connection.query("""
            SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             ORDER BY c.relname
            """, [schema ?? "public"]).rows.map { $0[0]! }
    }

    func describe(_ table: String) throws -> PostgresTable {
        try PostgresTable.describe(connection, schema: schema ?? "public", table: table)
    }

    func estimatedRows(of table: PostgresTable) throws -> Int64? {
        // reltuples is -1 for a table never vacuumed or analyzed; a partitioned table sums its partitions'.
        let relation = PostgresConnection.quoteIdentifier(schema ?? "public") + "." + PostgresConnection.quoteIdentifier(table.name)
        let estimate = try connection.query("""
            SELECT sum(c.reltuples)::bigint FROM pg_catalog.pg_partition_tree(pg_catalog.to_regclass($1)) t
              JOIN pg_catalog.pg_class c ON c.oid = t.relid
             WHERE t.isleaf AND c.reltuples >= 0
            """, [relation]).scalar
        return estimate.flatMap { Int64($0) }
    }

    func readRows(of table: PostgresTable, pageSize: Int, _ row: (UnsafeRawBufferPointer) throws -> Void) throws {
        try readPages(table.pageQuery(schema: schema ?? "public"), pageSize: pageSize, row)
    }

    /// Runs a keyset page query (``PostgresTable/pageQuery(schema:)`` or one of its incremental variants) to the
    /// end: `$1` is the page size, `first`'s further parameters are `bounds`, `next`'s the last page's key values.
    func readPages(_ queries: (first: String, next: String, keyCount: Int), bounds: [String] = [], pageSize: Int,
                   _ row: (UnsafeRawBufferPointer) throws -> Void) throws {
        var last: [String?] = []
        var first = true
        while true {
            let page = first
                ? try connection.query(queries.first, [String(pageSize)] + bounds)
                : try connection.query(queries.next, [String(pageSize)] + last)
            first = false
            for values in page.rows {
                var text = values[queries.keyCount]!
                try text.withUTF8 { try row(UnsafeRawBufferPointer($0)) }
            }
            guard page.rows.count == pageSize, let final = page.rows.last else { break }
            last = Array(final[0..<queries.keyCount])
        }
    }

    func close() {
        try? connection.execute("ROLLBACK")
    }
}
