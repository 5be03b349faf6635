import StarpipeCore
import StarpipePostgres

/// A client's Postgres, read in one REPEATABLE READ READ ONLY transaction with the session settings that make its
/// output text independent of the server's defaults (docs/TYPES.md). Each keyset page streams through
/// `COPY … TO STDOUT`, and ``PostgresRowEncoder`` writes its lines as the JSON `row_to_json` would.
final class PostgresSource: ExtractionSource {
    let kind = "postgres"
    private(set) var database: String?
    private(set) var version: String?
    let schema: String?
    private(set) var connection: PostgresConnection
    private let url: String
    private let password: String?
    private let retry: SourceRetry
    private let lockTimeout: Double

    /// Connects (one try; ``Extractor`` retries). `retry` paces the retries of a page, `lockTimeout` bounds the wait
    /// for a table's lock (a page that times out is read again).
    init(url: String, schema: String, password: String?, retry: SourceRetry, lockTimeout: Double) throws {
        self.url = url
        self.password = password
        self.schema = schema
        self.retry = retry
        self.lockTimeout = lockTimeout
        connection = try Self.connect(url: url, password: password)
    }

    private static func connect(url: String, password: String?) throws -> PostgresConnection {
        do {
            return try PostgresConnection(url: url, applicationName: "starpipe-extract", password: password)
        } catch {
            throw SourceConnectionError(message: "cannot connect to the source database: \(error)", isTransient: isTransient(connecting: error))
        }
    }

    func reconnect() throws {
        connection = try Self.connect(url: url, password: password)
    }

    /// libpq's text for failures that time cannot cure: a refused password or certificate, a missing database or
    /// role, a bad URL. Any other failure to connect (refused, timed out, starting up, too many clients) is transient.
    private static let permanentConnectFailures = [
        "authentication failed", "does not exist", "no pg_hba.conf entry", "certificate", "no password supplied",
        "password is required", "invalid connection option", "invalid URI", "invalid sslmode", "server does not support SSL",
        "SSL is not enabled", "invalid integer value", "could not translate host name",
    ]

    private static func isTransient(connecting error: PostgresError) -> Bool {
        !permanentConnectFailures.contains { error.serverMessage.contains($0) }
    }

    /// SQLSTATEs of a statement that failed without harm to the snapshot: rolled back to its savepoint, it may be
    /// run again (a lock not granted in time, a cancelled statement, memory or temporary-file space short).
    private static let retryableStatementStates: Set<String> = ["55P03", "57014", "53200", "53100", "53400"]

    func isConnectionLost(_ error: any Error) -> Bool {
        guard let error = error as? PostgresError else { return false }
        return error.code == .connection || error.sqlState.map { $0.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains($0) } == true
    }

    /// Whether rows would cross the network unencrypted: no TLS toward a host that is not this machine.
    var isPlainTextRemote: Bool { !connection.usesTLS && !connection.isLoopback }

    func beginSnapshot() throws -> String {
        // SET takes no snapshot; a table whose lock is not granted within lock_timeout fails its page, which is read
        // again after a backoff, rather than queueing the client's own sessions behind the extractor's wait.
        try connection.execute("""
            BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
            SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'iso_8601';
            SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex'; SET LOCAL lc_monetary = 'C';
            SET LOCAL standard_conforming_strings = on; SET LOCAL lock_timeout = \(max(1, Int((lockTimeout * 1000).rounded())));
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
        // reltuples is -1 for a table never vacuumed or analyzed; a parent sums its partitions' and children's. The
        // catalog is read directly: pg_partition_tree would lock the table, outside the page that waits for it.
        let relation = PostgresConnection.quoteIdentifier(schema ?? "public") + "." + PostgresConnection.quoteIdentifier(table.name)
        let estimate = try connection.query("""
            WITH RECURSIVE tree(relid) AS (
                SELECT pg_catalog.to_regclass($1)::oid
                UNION ALL
                SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN tree t ON i.inhparent = t.relid
            )
            SELECT sum(c.reltuples)::bigint FROM tree JOIN pg_catalog.pg_class c ON c.oid = tree.relid
             WHERE c.relkind <> 'p' AND c.reltuples >= 0
            """, [relation]).scalar
        return estimate.flatMap { Int64($0) }
    }

    func readRows(of table: PostgresTable, pageSize: Int, _ row: (UnsafeRawBufferPointer) throws -> Void) throws {
        try readPages(of: table, keyset: table.fullKeyset, pageSize: pageSize, row)
    }

    /// Reads the rows of `table` that `keyset`'s filter admits, in keyset order, one `COPY` per page.
    func readPages(of table: PostgresTable, keyset: PostgresKeyset, pageSize: Int,
                   _ row: (UnsafeRawBufferPointer) throws -> Void) throws {
        // Each page streams through COPY while this core turns its lines into JSON: the server only prints values.
        var encoder = PostgresRowEncoder(table: table, keyCount: keyset.expressions.count)
        defer { encoder.deallocate() }
        var after: [String]?
        while true {
            // A page that fails without losing the connection (a lock not granted in time, say) is rolled back to
            // its savepoint, in the same snapshot, and read again, skipping the rows already handed on.
            var rows = 0
            let statement = table.pageCopy(schema: schema ?? "public", keyset: keyset, limit: pageSize, after: after)
            try connection.execute("SAVEPOINT starpipe_page")
            try retry.run("read a page of table \(table.name)", transient: Self.isRetryable,
                          prepare: { try connection.execute("ROLLBACK TO SAVEPOINT starpipe_page") }) {
                var line = 0
                try connection.copyOut(statement) { text in
                    line += 1
                    guard line > rows else { return }
                    try encoder.encode(text)
                    try row(encoder.object)
                    rows += 1
                }
            }
            try connection.execute("RELEASE SAVEPOINT starpipe_page")
            guard rows == pageSize else { break }
            after = encoder.lastKey()
        }
    }

    private static func isRetryable(_ error: any Error) -> Bool {
        (error as? PostgresError)?.sqlState.map(retryableStatementStates.contains) == true
    }

    func close() {
        try? connection.execute("ROLLBACK")
    }
}
