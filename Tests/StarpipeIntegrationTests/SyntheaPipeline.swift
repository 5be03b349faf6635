import Foundation
import Logging
import StarpipeBucket
import StarpipeCore
import StarpipeExtract
import StarpipeMapping
import StarpipePostgres
import StarpipeWorker

/// One private copy of the demo: a client database loaded with the Synthea sample, a pipeline
/// database with the extension, production schema and mapping, and a temporary bucket directory (or the
/// bucket given, e.g. an S3 bucket on a private moto_server).
struct SyntheaPipeline {
    let clientURL: String
    let pipelineURL: String
    let bucketDirectory: String
    let bucket: any Bucket
    let client = "synthea_demo"
    let logger: Logger

    /// Source keys of each mapped table: production must hold one row per distinct key.
    static let sourceKeys: [String: (target: String, key: String)] = [
        "patients": ("patients", #""Id""#),
        "encounters": ("encounters", #""Id""#),
        "conditions": ("conditions", #""PATIENT", "ENCOUNTER", "CODE""#),
        "medications": ("medications", #""PATIENT", "ENCOUNTER", "CODE", "START""#),
        "observations": ("observations", #""PATIENT", "CODE", "DATE""#),
        "immunizations": ("immunizations", #""PATIENT", "ENCOUNTER", "CODE", "DATE""#),
        "procedures": ("procedures", #""ENCOUNTER", "CODE", "START""#),
        "allergies": ("allergies", #""PATIENT", "ENCOUNTER", "CODE""#),
    ]

    init(bucket given: (any Bucket)? = nil) throws {
        clientURL = try TestServer.createDatabase("sp_client")
        pipelineURL = try TestServer.createDatabase("sp_pipeline")
        let examples = TestServer.repo.appendingPathComponent("examples/synthea")
        try TestServer.run(examples.appendingPathComponent("load_client.sh").path, [clientURL])
        let pipeline = try PostgresConnection(url: pipelineURL)
        try pipeline.execute("CREATE EXTENSION starpipe")
        try pipeline.execute(try String(contentsOf: examples.appendingPathComponent("production.sql"), encoding: .utf8))
        try MappingConfig(contentsOf: examples.appendingPathComponent("mapping.yaml").path).apply(to: pipeline)
        bucketDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("starpipe-test-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: bucketDirectory, withIntermediateDirectories: true)
        bucket = given ?? LocalBucket(root: bucketDirectory)
        var logger = Logger(label: "starpipe.test")
        logger.logLevel = .error
        self.logger = logger
    }

    /// Extracts from the client database; returns the manifests.
    @discardableResult
    func extract(tables: [String]? = nil, runID: String? = nil) throws -> [Manifest] {
        try Extractor(options: ExtractOptions(sourceURL: clientURL, client: client, tables: tables, runID: runID),
                      bucket: bucket, logger: logger).run()
    }

    /// Runs a worker until nothing is left to do.
    func work(binaryCopy: Bool = true) throws {
        try Worker(options: WorkerOptions(databaseURL: pipelineURL, untilIdle: true, binaryCopy: binaryCopy),
                   bucket: bucket, logger: logger).run()
    }

    /// A digest of every raw row of a client table (metadata that differs per run left out).
    func rawFingerprint(_ table: String) throws -> String {
        try pipeline().query("""
            SELECT coalesce(md5(string_agg(r, '|' ORDER BY r)), 'empty') FROM (
              SELECT (to_jsonb(v_row) - '_ingested_at' - '_ingestion_id' - '_source_file')::text AS r
                FROM raw_\(client).\(table) v_row) s
            """).scalar!
    }

    func pipeline() throws -> PostgresConnection { try PostgresConnection(url: pipelineURL) }
    func source() throws -> PostgresConnection { try PostgresConnection(url: clientURL) }

    /// Jobs as (table, status, error), in job order.
    func jobs() throws -> [(table: String, status: String, error: String?)] {
        try pipeline().query("SELECT table_name, status, error FROM starpipe.job ORDER BY job_id").rows
            .map { ($0[0]!, $0[1]!, $0[2]) }
    }

    /// A digest of a production table's full contents, to prove it unchanged.
    func fingerprint(_ target: String) throws -> String {
        try pipeline().query("""
            SELECT coalesce(md5(string_agg(r, '|' ORDER BY r)), 'empty')
              FROM (SELECT (to_jsonb(v_row) - 'loaded_at')::text AS r FROM production.\(target) v_row) s
            """).scalar!
    }

    func count(_ sql: String, on connection: PostgresConnection) throws -> Int {
        Int(try connection.query(sql).scalar ?? "-1") ?? -1
    }
}
