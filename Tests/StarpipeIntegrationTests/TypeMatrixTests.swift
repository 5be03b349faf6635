import CopyEncoding
import Foundation
import Logging
import StarpipeBucket
import StarpipeCore
import StarpipeExtract
import StarpipePostgres
import StarpipeWorker
import Testing

/// Exact round trip from a client's table to raw: the type matrix (``TypeMatrix``) goes through `extract`, the
/// worker and raw, and every value is compared in the database with what the source holds.
@Suite("Type matrix")
struct TypeMatrixTests {
    /// With `hostileDefaults`, both databases default to another time zone, date, interval, float and bytea style, so
    /// only the settings the extractor and the worker pin make the values equal. (lc_monetary cannot vary here: the
    /// machine has only C locales.)
    @Test("every value of every matrix type lands in raw as the source holds it (source and raw output text equal)",
          arguments: [(true, false), (false, false), (true, true)])
    func roundTrip(binaryCopy: Bool, hostileDefaults: Bool) throws {
        let sourceURL = try TestServer.createDatabase("sp_matrix_source")
        let source = try PostgresConnection(url: sourceURL, settings: PostgresConnection.pipelineSettings)
        try source.execute(TypeMatrix.sourceSQL)
        let pipelineURL = try TestServer.createDatabase("sp_matrix")
        let pipeline = try PostgresConnection(url: pipelineURL, settings: PostgresConnection.pipelineSettings)
        try pipeline.execute("CREATE EXTENSION starpipe")
        if hostileDefaults {
            for url in [sourceURL, pipelineURL] {
                let name = String(url.split(separator: "/").last!)
                try source.execute("""
                    ALTER DATABASE \(name) SET TimeZone = 'America/New_York';
                    ALTER DATABASE \(name) SET DateStyle = 'SQL, DMY';
                    ALTER DATABASE \(name) SET IntervalStyle = 'sql_standard';
                    ALTER DATABASE \(name) SET extra_float_digits = -15;
                    ALTER DATABASE \(name) SET bytea_output = 'escape';
                    """)
            }
        }
        let bucket = LocalBucket(root: Self.temporaryDirectory())
        let manifests = try Extractor(options: ExtractOptions(sourceURL: sourceURL, client: "matrix", runID: "m"),
                                      bucket: bucket, logger: Self.logger).run()
        // The partitioned table is read once, through its parent; its partitions are not tables of their own.
        #expect(manifests.map(\.table).sorted() == TypeMatrix.rawTypes.keys.sorted())
        try Worker(options: WorkerOptions(databaseURL: pipelineURL, untilIdle: true, binaryCopy: binaryCopy),
                   bucket: bucket, logger: Self.logger).run()
        for job in try pipeline.query("SELECT table_name, status, coalesce(error, '') FROM starpipe.job ORDER BY job_id").rows {
            #expect(job[1] == "SUCCESS", "\(job[0]!): \(job[2]!)")
        }

        // Domains are described by their base type, and name themselves as source_type.
        let userTypes = try #require(manifests.first { $0.table == "user_types" })
        for column in userTypes.columns where column.name != "id" {
            let expected = try #require(TypeMatrix.domainColumns[column.name], "\(column.name)")
            #expect(column.type == expected.type, "user_types.\(column.name)")
            #expect(column.sourceType == expected.sourceType, "user_types.\(column.name)")
        }

        // Raw columns have the types the manifest gives them.
        for (table, types) in TypeMatrix.rawTypes {
            let landed = try pipeline.query("""
                SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = pg_catalog.format('raw_matrix.%I', $1::text)::regclass AND a.attnum > 0
                   AND NOT a.attisdropped AND a.attname NOT LIKE '\\_%'
                """, [table]).rows
            #expect(Dictionary(uniqueKeysWithValues: landed.map { ($0[0]!, $0[1]!) }) == types, "\(table)")
        }

        // The canonical file really takes the binary path (else the binary run would prove nothing about it).
        if binaryCopy {
            let scalars = try #require(manifests.first { $0.table == "scalars" })
            #expect(try Self.transcodes(scalars, bucket: bucket, types: TypeMatrix.rawTypes["scalars"]!))
        }

        // Every value, as each database prints it under the same pinned settings, side by side in the pipeline
        // database: one row per (table, id, column) on each side.
        try pipeline.execute("""
            CREATE TEMP TABLE expected (tbl text, id text, col text, val text);
            CREATE TEMP TABLE landed (tbl text, id text, col text, val text);
            """)
        for manifest in manifests {
            let names = manifest.columns.map(\.name)
            let list = names.map(PostgresConnection.quoteIdentifier).joined(separator: ", ")
            let table = PostgresConnection.quoteIdentifier(manifest.table)
            for (side, connection, relation) in [("expected", source, table), ("landed", pipeline, "raw_matrix." + table)] {
                let rows = try connection.query("SELECT \(list) FROM \(relation) ORDER BY id").rows
                var cells: [[Any]] = []
                for row in rows {
                    let id = row[names.firstIndex(of: "id")!]!
                    for (name, value) in zip(names, row) {
                        cells.append([manifest.table, id, name, value.map { $0 as Any } ?? NSNull()])
                    }
                }
                let json = String(decoding: try JSONSerialization.data(withJSONObject: cells), as: UTF8.self)
                try pipeline.query("""
                    INSERT INTO \(side) SELECT c->>0, c->>1, c->>2, c->>3 FROM pg_catalog.jsonb_array_elements($1::jsonb) c
                    """, [json])
            }
        }
        let compared = Int(try pipeline.query("SELECT count(*) FROM expected").scalar ?? "0") ?? 0
        #expect(compared > 500)
        let differences = try pipeline.query("""
            SELECT coalesce(e.tbl, l.tbl), coalesce(e.id, l.id), coalesce(e.col, l.col),
                   CASE WHEN l.tbl IS NULL THEN 'missing from raw' WHEN e.tbl IS NULL THEN 'not in the source'
                        ELSE 'differs' END, coalesce(e.val, 'NULL'), coalesce(l.val, 'NULL')
              FROM expected e FULL JOIN landed l ON l.tbl = e.tbl AND l.id = e.id AND l.col = e.col
             WHERE e.tbl IS NULL OR l.tbl IS NULL OR e.val IS DISTINCT FROM l.val
             ORDER BY 1, 2, 3
            """).rows
        for row in differences {
            // Matrix values are made up, so the failure may show them.
            Issue.record("\(row[0]!) row id=\(row[1]!) column \(row[2]!): \(row[3]!) (source \(row[4]!), raw \(row[5]!))")
        }
    }

    @Test("a column whose values cannot be carried stops the extractor before it writes anything, naming table and column")
    func uncarriedTypeIsRefused() throws {
        let sourceURL = try TestServer.createDatabase("sp_matrix_source")
        try PostgresConnection(url: sourceURL).execute("""
            CREATE TABLE a_first (id integer PRIMARY KEY);
            INSERT INTO a_first VALUES (1);
            CREATE TABLE catalog_refs (id integer PRIMARY KEY, owner_table regclass, grants aclitem[]);
            INSERT INTO catalog_refs VALUES (1, 'a_first', NULL);
            """)
        let directory = Self.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let bucket = LocalBucket(root: directory)
        let error = #expect(throws: StarpipeError.self) {
            try Extractor(options: ExtractOptions(sourceURL: sourceURL, client: "matrix", runID: "m"),
                          bucket: bucket, logger: Self.logger).run()
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("catalog_refs") && message.contains("owner_table") && message.contains("regclass"), "\(message)")
        #expect(try bucket.list().isEmpty, "nothing is written, not even the tables before it")
        // Named element types are refused too.
        try PostgresConnection(url: sourceURL).execute("ALTER TABLE catalog_refs DROP COLUMN owner_table")
        let arrayError = #expect(throws: StarpipeError.self) {
            try Extractor(options: ExtractOptions(sourceURL: sourceURL, client: "matrix", tables: ["catalog_refs"], runID: "n"),
                          bucket: bucket, logger: Self.logger).run()
        }
        #expect(arrayError.map { "\($0)" }?.contains("grants") == true)
    }

    /// Whether the worker's encoder and binary transcoder take a data file as it is (no fallback to text).
    private static func transcodes(_ manifest: Manifest, bucket: LocalBucket, types: [String: String]) throws -> Bool {
        let key = ManifestKey.structuredDirectory(client: manifest.client, table: manifest.table,
                                                  date: SnapshotDate(iso: manifest.snapshotDate)!, runID: manifest.runId)
        let data = try bucket.read(key + ManifestKey.dataFileName)
        var encoder = CopyRowEncoder(columns: manifest.columns.map(\.name))
        var text: [UInt8] = []
        try Array(data).withUnsafeBytes { try encoder.feed($0, into: &text) }
        try encoder.finish(into: &text)
        var transcoder = BinaryCopyTranscoder(types: manifest.columns.map { BinaryCopyType(sqlName: types[$0.name]!)! })
        var binary: [UInt8] = []
        return (try? transcoder.transcode(text, into: &binary)) != nil
    }

    private static func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-matrix-\(UInt32.random(in: 0...UInt32.max))").path
    }

    private static var logger: Logger {
        var logger = Logger(label: "starpipe.test")
        logger.logLevel = .error
        return logger
    }
}
