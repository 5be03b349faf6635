import Crypto
import Foundation
import Logging
import StarpipeBucket
import StarpipeCore

/// Reads tables of a client's database (Postgres, MySQL/MariaDB or SQLite) and writes, per table, a JSON array data file
/// and then its manifest (the commit marker) under the structured bucket key.
///
/// All tables are read in one consistent snapshot (REPEATABLE READ, or the source's equivalent).
/// Rows are read in keyset pages and streamed to the bucket: memory holds one page at a time.
/// Output is deterministic: unchanged source data gives byte-identical files (same sha256).
public struct Extractor {
    public let options: ExtractOptions
    public let bucket: any Bucket
    public let logger: Logger
    /// Polled for every row written: true stops the run (SIGTERM, SIGINT). The data upload in progress is
    /// abandoned (on S3, its multipart upload aborted) and its manifest never written. Defaults to never.
    public var isCancelled: @Sendable () -> Bool = { false }
    /// Told how far the run has got: about four times a second while a table is read, and once when it is
    /// committed. Defaults to nothing.
    public var progress: (ExtractProgress) -> Void = { _ in }

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
        return try run(Self.openSource(options, logger: logger, isCancelled: isCancelled))
    }

    /// Describes the selected tables without writing anything (`--dry-run`): every table and column with its
    /// manifest type, and for each table the extractor would refuse, why.
    public static func describe(_ options: ExtractOptions, logger: Logger) throws -> SourceReport {
        try describe(openSource(options, logger: logger), tables: options.tables)
    }

    /// Connects to the source the URL names, retrying transient failures; the password from
    /// ``ExtractOptions/password`` when the URL holds none.
    private static func openSource(_ options: ExtractOptions, logger: Logger, isCancelled: @escaping () -> Bool = { false }) throws -> any ExtractionSource {
        let retry = SourceRetry(backoff: options.retry, logger: logger, isCancelled: isCancelled)
        switch try SourceURL.parse(options.sourceURL) {
        case .postgres(let url):
            let source = try retry.connecting("connect to the source") {
                try PostgresSource(url: url, schema: options.schema, password: options.password, retry: retry, lockTimeout: options.lockTimeout)
            }
            if source.isPlainTextRemote {
                logger.warning("TLS is off toward a host that is not this machine: the client's rows cross the network in the clear. Add sslmode=verify-full&sslrootcert=CA.pem to the source URL")
            }
            return source
        case .mariaDB(var address):
            if !address.passwordInURL, let password = options.password { address.password = password }
            if address.tls == .disable && !address.isLoopback {
                logger.warning("TLS is off toward a host that is not this machine: the client's rows cross the network in the clear. Add ?sslmode=verify-full&sslrootcert=CA.pem to the source URL", metadata: ["starpipe.source": "\(address)"])
            }
            return try retry.connecting("connect to the source") { try MariaDBSource(address: address, retry: retry) }
        case .sqlite(let path): return try SQLiteSource(path: path)
        }
    }

    private static func describe<Source: ExtractionSource>(_ source: Source, tables: [String]?) throws -> SourceReport {
        defer { source.close() }
        _ = try source.beginSnapshot()
        let tables = try (tables ?? source.tableNames()).map { name in
            do {
                let table = try source.describe(name)
                return SourceReport.Table(name: name, columns: table.columns, primaryKey: table.primaryKey, problem: nil)
            } catch let error as StarpipeError {
                return SourceReport.Table(name: name, columns: [], primaryKey: [], problem: error.message)
            }
        }
        return SourceReport(kind: source.kind, tables: tables)
    }

    private func run<Source: ExtractionSource>(_ source: Source) throws -> [Manifest] {
        defer { source.close() }
        let incremental = options.incremental.flatMap { $0.cursors.isEmpty ? nil : $0 }
        // The state lock first, so no other run for this client moves a watermark while this one reads; then the safe
        // point, which must be read before the snapshot exists (PostgresSource.safePoint says why).
        let state = try incremental.map { try WatermarkState(directory: $0.stateDirectory, client: options.client) }
        let high = try incremental.map { try source.safePoint().minus(microseconds: $0.skewMarginMicroseconds) }
        var snapshotTime = try source.beginSnapshot()
        // Every table is described, and its cursor checked, before anything is written, so a column that cannot be
        // carried or a bad cursor stops the run with nothing in the bucket.
        let names = try options.tables ?? source.tableNames()
        var tables = try names.map { try source.describe($0) }
        if let incremental, options.tables == nil {
            let described = Set(tables.map { $0.name.lowercased() })
            if let unknown = incremental.cursors.keys.sorted().first(where: { !described.contains($0) }) {
                throw StarpipeError(.configuration, "incremental.tables.\(unknown) names a table the source schema does not have")
            }
        }
        var plans: [TableReadPlan] = []
        for table in tables {
            plans.append(try plan(table, source: source, incremental: incremental, state: state, high: high))
        }
        let retry = SourceRetry(backoff: options.retry, logger: logger, isCancelled: isCancelled)
        var manifests: [Manifest] = []
        for index in tables.indices {
            var attempt = 1
            while true {
                do {
                    manifests.append(try extract(tables[index], plan: plans[index], from: source, state: state,
                                                 snapshotTime: snapshotTime, position: (index + 1, tables.count)))
                    break
                } catch where attempt < options.retry.attempts && source.isConnectionLost(error) && !isCancelled() {
                    // The snapshot went with the connection: the table's upload was abandoned, and it is read again
                    // from its start in a new snapshot, which this and the later tables' manifests record. An
                    // incremental table keeps its high watermark, read before the first snapshot and so still safe.
                    logger.warning("the connection to the source was lost; reading the table again from its start in a new snapshot", metadata: [
                        "starpipe.table": "\(tables[index].name)", "starpipe.attempt": "\(attempt)", "starpipe.error": "\(error)",
                    ])
                    Thread.sleep(forTimeInterval: options.retry.delay(after: attempt))
                    attempt += 1
                    try retry.connecting("reconnect to the source") { try source.reconnect() }
                    snapshotTime = try source.beginSnapshot()
                    for later in index..<tables.count {
                        tables[later] = try source.describe(names[later])
                        plans[later] = try plan(tables[later], source: source, incremental: incremental, state: state, high: high)
                    }
                }
            }
        }
        return manifests
    }

    /// Decides how `table` is read: in full without a cursor (saying so when the run is incremental), else from the
    /// previous high watermark minus the lookback.
    private func plan<Source: ExtractionSource>(_ table: Source.Table, source: Source, incremental: IncrementalOptions?,
                                                state: WatermarkState?, high: Watermark?) throws -> TableReadPlan {
        let key = WatermarkState.key(kind: source.kind, database: source.database, schema: source.schema, table: table.name)
        guard let incremental, let state, let high else { return .full(stateKey: key) }
        guard let cursor = incremental.cursors[table.name.lowercased()] else {
            if incremental.enabled {
                logger.notice("table has no cursor in the config: read in full (mode full)", metadata: ["starpipe.table": "\(table.name.lowercased())"])
            }
            return .full(stateKey: key)
        }
        _ = try cursor.check(table)
        guard incremental.enabled else {
            return TableReadPlan(cursor: cursor, incremental: false, low: nil, high: high, stateKey: key, nullCursorRows: nil)
        }
        var nullRows: Int64?
        if cursor.nullCursor != .include {
            let count = try source.nullCursorRows(of: table, cursor: cursor)
            if cursor.nullCursor == .fail && count > 0 {
                throw StarpipeError(.source, "source table \(table.name) has \(count) row(s) whose cursor (\(cursor.columns.joined(separator: ", "))) is NULL, and its null_cursor policy is fail; nothing was written. Coalesce a column that is always set (cursor: [\(cursor.columns.joined(separator: ", ")), created_at]), or set null_cursor to include or exclude")
            }
            nullRows = count
        }
        let previous = state.highWatermark(of: key, cursor: cursor.columns)
        if previous == nil {
            logger.notice("no watermark for this table and cursor yet: this run reads every row", metadata: ["starpipe.table": "\(table.name.lowercased())"])
        }
        return TableReadPlan(cursor: cursor, incremental: true,
                             low: previous?.minus(microseconds: incremental.lookbackMicroseconds),
                             high: high, stateKey: key, nullCursorRows: nullRows)
    }

    private func extract<Source: ExtractionSource>(_ source: Source.Table, plan: TableReadPlan, from reader: Source,
                                                   state: WatermarkState?, snapshotTime: String,
                                                   position: (index: Int, count: Int)) throws -> Manifest {
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
        let estimate = try reader.estimatedRows(of: source)
        let started = ContinuousClock.now
        var reported = started
        func report(finished: Bool) {
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            progress(ExtractProgress(table: table, tableIndex: position.index, tableCount: position.count, rows: rows,
                                     bytes: bytes, estimatedRows: estimate, seconds: seconds, finished: finished))
        }
        try bucket.put(dataKey) { writer in
            // Rows are gathered into one buffer and hashed and written a mebibyte at a time, not row by row.
            let flushAt = 1 << 20
            var buffer: [UInt8] = []
            buffer.reserveCapacity(flushAt + (1 << 16))
            func flush() throws {
                try buffer.withUnsafeBytes { raw in
                    hasher.update(bufferPointer: raw)
                    try writer.write(raw)
                }
                buffer.removeAll(keepingCapacity: true)
            }
            func emit(_ raw: UnsafeRawBufferPointer) throws {
                buffer.append(contentsOf: raw)
                bytes += Int64(raw.count)
                if buffer.count >= flushAt { try flush() }
            }
            func emit(_ text: StaticString) throws {
                try emit(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
            }
            try emit("[")
            func take(_ row: UnsafeRawBufferPointer) throws {
                if isCancelled() {
                    throw StarpipeError(.source, "extraction of table \(table) cancelled; its data file \(dataKey) was not committed")
                }
                try emit(rows == 0 ? "\n" : ",\n")
                try emit(row)
                rows += 1
                if rows & 1023 == 0, ContinuousClock.now - reported >= .milliseconds(250) {
                    reported = ContinuousClock.now
                    report(finished: false)
                }
            }
            if plan.incremental, let cursor = plan.cursor {
                try reader.readRows(of: source, cursor: cursor, from: plan.low, includingNullCursor: cursor.nullCursor == .include,
                                    pageSize: options.pageSize, take)
            } else {
                try reader.readRows(of: source, pageSize: options.pageSize, take)
            }
            try emit(rows == 0 ? "]\n" : "\n]\n")
            try flush()
        }
        let manifest = Manifest(
            client: options.client, table: table,
            source: .init(kind: reader.kind, database: reader.database, schema: reader.schema, table: source.name,
                          version: reader.version),
            snapshotDate: options.snapshotDate.iso, extractedAt: snapshotTime,
            runId: options.runID, mode: plan.incremental ? .incremental : .full, rowCount: rows, byteCount: bytes,
            sha256: hasher.finalize().lowercaseHex,
            columns: source.columns, primaryKey: source.primaryKey,
            incremental: plan.incremental ? Manifest.Incremental(
                cursor: plan.cursor!.columns, lowWatermark: plan.low?.description,
                highWatermark: plan.high!.description, nullCursor: plan.cursor!.nullCursor.rawValue) : nil)
        // The manifest goes last: its presence is what makes the data file eligible for ingestion.
        try bucket.put(directory + ManifestKey.manifestFileName) { writer in
            try writer.write(Array(manifest.encoded()))
        }
        // The watermark moves only now that the manifest is committed: a run killed before this line leaves the old
        // watermark, and the next run reads this table's rows again.
        if let state, let high = plan.high, let cursor = plan.cursor {
            try state.record(high, of: plan.stateKey, cursor: cursor.columns)
        }
        if plan.incremental, let excluded = plan.nullCursorRows, excluded > 0 {
            logger.notice("rows with a NULL cursor left out (null_cursor: exclude)", metadata: [
                "starpipe.table": "\(table)", "starpipe.rows": "\(excluded)",
            ])
        }
        report(finished: true)
        logger.info("extracted table", metadata: [
            "starpipe.client": "\(options.client)", "starpipe.table": "\(table)",
            "starpipe.rows": "\(rows)", "starpipe.bytes": "\(bytes)", "starpipe.mode": "\(plan.incremental ? "incremental" : "full")",
        ])
        return manifest
    }
}
