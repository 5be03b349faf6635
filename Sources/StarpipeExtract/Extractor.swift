import Crypto
import Foundation
import Logging
import StarpipeBucket
import StarpipeCore
import StarpipePostgres

/// Reads tables of a client's Postgres database and writes, per table, a JSON array data file
/// and then its manifest (the commit marker) under the structured bucket key.
///
/// All tables are read in one REPEATABLE READ transaction, so they form one consistent snapshot.
/// Rows are read in keyset pages and streamed to the bucket: memory holds one page at a time.
/// Output is deterministic: unchanged source data gives byte-identical files (same sha256).
public struct Extractor {
    public let options: ExtractOptions
    public let bucket: any Bucket
    public let logger: Logger
    /// Polled for every row written: true stops the run (SIGTERM, SIGINT). The data upload in progress is
    /// abandoned (on S3, its multipart upload aborted) and its manifest never written. Defaults to never.
    public var isCancelled: @Sendable () -> Bool = { false }

    public init(options: ExtractOptions, bucket: any Bucket, logger: Logger) {
        self.options = options
        self.bucket = bucket
        self.logger = logger
    }

    /// Extracts every selected table; returns the manifests written, in table order.
    @discardableResult
    public func run() throws -> [Manifest] {
        try Name.check(options.client, kind: "client")
        try RunID.check(options.runID)
        guard options.pageSize > 0 else {
            throw StarpipeError(.configuration, "page size must be positive")
        }
        let connection: PostgresConnection
        do {
            connection = try PostgresConnection(url: options.sourceURL, applicationName: "starpipe-extract")
        } catch {
            throw StarpipeError(.source, "cannot connect to the source database: \(error)")
        }
        try connection.execute("""
            BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
            SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'iso_8601';
            SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex'; SET LOCAL lc_monetary = 'C';
            """)
        defer { try? connection.execute("ROLLBACK") }
        // The first query takes the snapshot every table is read in; the time it reads is that snapshot's, to the
        // microsecond, so of two overlapping runs the one with the later snapshot is the newer (extracted_at).
        let snapshot = try connection.query("""
            SELECT pg_catalog.current_database() AS database,
                   pg_catalog.to_char(pg_catalog.clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS taken
            """)
        let database = snapshot.value(0, "database")
        let snapshotTime = snapshot.value(0, "taken") ?? ""
        // Every table is described before anything is written, so a column that cannot be carried stops the run
        // with nothing in the bucket.
        let sources = try tableNames(connection).map {
            try SourceTable.describe(connection, schema: options.schema, table: $0)
        }
        return try sources.map { try extract($0, connection: connection, database: database, snapshotTime: snapshotTime) }
    }

    private func tableNames(_ connection: PostgresConnection) throws -> [String] {
        if let tables = options.tables { return tables }
        return try connection.query("""
            SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
             ORDER BY c.relname
            """, [options.schema]).rows.map { $0[0]! }
    }

    private func extract(_ source: SourceTable, connection: PostgresConnection, database: String?,
                         snapshotTime: String) throws -> Manifest {
        let table = source.name.lowercased()
        guard Name.isValid(table) else {
            throw StarpipeError(.invalidName, "source table \(source.name) cannot be used as a starpipe table name (lower-case letters, digits, _; at most \(Name.maxBytes) bytes)")
        }
        let directory = ManifestKey.structuredDirectory(client: options.client, table: table,
                                                        date: options.snapshotDate, runID: options.runID)
        let dataKey = directory + ManifestKey.dataFileName
        var hasher = SHA256()
        var bytes: Int64 = 0
        var rows: Int64 = 0
        let queries = source.pageQuery(schema: options.schema)
        try bucket.put(dataKey) { writer in
            func emit(_ text: String) throws {
                if isCancelled() {
                    throw StarpipeError(.source, "extraction of table \(table) cancelled; its data file \(dataKey) was not committed")
                }
                var text = text
                try text.withUTF8 { buffer in
                    let raw = UnsafeRawBufferPointer(buffer)
                    hasher.update(bufferPointer: raw)
                    bytes += Int64(raw.count)
                    try writer.write(raw)
                }
            }
            try emit("[")
            var last: [String?] = []
            while true {
                let page = rows == 0 && last.isEmpty
                    ? try connection.query(queries.first, [String(options.pageSize)])
                    : try connection.query(queries.next, [String(options.pageSize)] + last)
                for row in page.rows {
                    try emit(rows == 0 ? "\n" : ",\n")
                    try emit(row[queries.keyCount]!)
                    rows += 1
                }
                guard page.rows.count == options.pageSize, let final = page.rows.last else { break }
                last = Array(final[0..<queries.keyCount])
            }
            try emit(rows == 0 ? "]\n" : "\n]\n")
        }
        let manifest = Manifest(
            client: options.client, table: table,
            source: .init(kind: "postgres", database: database, schema: options.schema, table: source.name),
            snapshotDate: options.snapshotDate.iso, extractedAt: snapshotTime,
            runId: options.runID, rowCount: rows, byteCount: bytes,
            sha256: hasher.finalize().lowercaseHex,
            columns: source.columns, primaryKey: source.primaryKey)
        // The manifest goes last: its presence is what makes the data file eligible for ingestion.
        try bucket.put(directory + ManifestKey.manifestFileName) { writer in
            try writer.write(Array(manifest.encoded()))
        }
        logger.info("extracted table", metadata: [
            "starpipe.client": "\(options.client)", "starpipe.table": "\(table)",
            "starpipe.rows": "\(rows)", "starpipe.bytes": "\(bytes)",
        ])
        return manifest
    }
}
