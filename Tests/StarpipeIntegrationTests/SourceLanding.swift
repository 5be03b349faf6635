import Foundation
import Logging
import StarpipeBucket
import StarpipeCore
import StarpipeExtract
import StarpipePostgres
import StarpipeWorker
import Testing

/// Extract a source of any kind, land it in raw through the real worker, and compare what landed cell by cell.
enum SourceLanding {
    /// Extracts `sourceURL` into a new local bucket and runs the worker on it into a new pipeline database; every
    /// job must succeed.
    static func land(_ sourceURL: String, client: String, tables: [String]? = nil, pageSize: Int = 10_000,
                     binaryCopy: Bool = true, pipelineURL: String? = nil) throws -> (manifests: [Manifest], pipeline: PostgresConnection) {
        let pipelineURL = try pipelineURL ?? {
            let url = try TestServer.createDatabase("sp_sources")
            try PostgresConnection(url: url).execute("CREATE EXTENSION starpipe")
            return url
        }()
        let bucket = LocalBucket(root: temporaryDirectory())
        let manifests = try Extractor(options: ExtractOptions(sourceURL: sourceURL, client: client, tables: tables,
                                                              pageSize: pageSize, runID: "r"),
                                      bucket: bucket, logger: logger).run()
        for manifest in manifests { try manifest.check() }
        try Worker(options: WorkerOptions(databaseURL: pipelineURL, untilIdle: true, binaryCopy: binaryCopy),
                   bucket: bucket, logger: logger).run()
        let pipeline = try PostgresConnection(url: pipelineURL, settings: PostgresConnection.pipelineSettings)
        for job in try pipeline.query("SELECT table_name, status, coalesce(error, '') FROM starpipe.job WHERE client = $1 ORDER BY job_id", [client]).rows {
            #expect(job[1] == "SUCCESS", "\(job[0]!): \(job[2]!)")
        }
        return (manifests, pipeline)
    }

    /// Compares raw's columns (their types, and every value as Postgres prints it under the pipeline settings) with
    /// `expected`: one dictionary per row, keyed by column, `id` included; nil is SQL NULL.
    static func compare(_ pipeline: PostgresConnection, client: String, table: String, types: [String: String],
                        expected: [[String: String?]]) throws {
        let landed = try pipeline.query("""
            SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = pg_catalog.format('%I.%I', 'raw_' || $1, $2::text)::regclass AND a.attnum > 0
               AND NOT a.attisdropped AND a.attname NOT LIKE '\\_%'
            """, [client, table]).rows
        #expect(Dictionary(uniqueKeysWithValues: landed.map { ($0[0]!, $0[1]!) }) == types, "\(table)")
        let names = types.keys.sorted()
        let list = names.map { "\(PostgresConnection.quoteIdentifier($0))::text" }.joined(separator: ", ")
        let rows = try pipeline.query("SELECT \(list) FROM raw_\(client).\(PostgresConnection.quoteIdentifier(table)) ORDER BY id").rows
        #expect(rows.count == expected.count, "\(table): \(rows.count) rows landed, \(expected.count) expected")
        for (row, want) in zip(rows, expected) {
            for (name, value) in zip(names, row) {
                guard let wanted = want[name] else { Issue.record("\(table): no expected value for \(name)"); continue }
                #expect(value == wanted, "\(table) id=\(want["id"]!!) column \(name)")
            }
        }
    }

    static func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-sources-\(UInt32.random(in: 0...UInt32.max))").path
    }

    static var logger: Logger {
        var logger = Logger(label: "starpipe.test")
        logger.logLevel = .error
        return logger
    }
}
