import Crypto
import Foundation
import CopyEncoding
import Logging
import StarpipeBucket
import StarpipeCore
import StarpipePostgres
import StarpipeWorker
import Testing

/// Binary COPY is an optimisation only: whatever the format, the same rows land.
@Suite("COPY formats")
struct CopyFormatTests {
    @Test("binary and text COPY land identical raw rows and production for every Synthea table")
    func syntheaBinaryEqualsText() throws {
        let binary = try SyntheaPipeline()
        let text = try SyntheaPipeline()
        let tables = try binary.extract(runID: "same").map(\.table)
        try text.extract(runID: "same")
        try binary.work(binaryCopy: true)
        try text.work(binaryCopy: false)
        #expect(try binary.jobs().allSatisfy { $0.status == "SUCCESS" })
        #expect(try text.jobs().allSatisfy { $0.status == "SUCCESS" })
        for table in tables {
            #expect(try binary.rawFingerprint(table) == text.rawFingerprint(table), "\(table)")
        }
        for target in SyntheaPipeline.sourceKeys.values.map(\.target) {
            #expect(try binary.fingerprint(target) == text.fingerprint(target), "\(target)")
        }
    }

    /// The extension says which raw types may go binary (`_binary_copy_types`); the worker must encode each one.
    @Test("every type the extension allows in binary COPY has a binary encoder in the worker")
    func binaryTypeListsAgree() throws {
        let connection = try PostgresConnection(url: try TestServer.createDatabase("sp_binary_types"))
        try connection.execute("CREATE EXTENSION starpipe")
        let types = try connection.query("SELECT unnest(starpipe._binary_copy_types())").rows.compactMap { $0[0] }
        #expect(types.count >= 10)
        for type in types {
            #expect(BinaryCopyType(sqlName: type) != nil, "\(type)")
        }
    }

    /// Canonical edge values go through the binary encoders; non-canonical ones make that file fall
    /// back to text. Both must equal a pure text load, value for value.
    @Test("edge values: binary (with fallback) equals text", arguments: [
        ("canonical", [
            #"{"n":"0","i":-2147483648,"b":9223372036854775807,"s":-32768,"r":1.5,"d":-1.5e-10,"num":0.000100,"num2":-0.0,"num3":123456789012345678901234567890.123456789,"t":true,"f":"f","day":"0001-01-01","day2":"9999-12-31","ts":"2020-02-29T23:59:59.999999Z","ts2":"1999-12-31 19:00:00-05:00","ts3":"2000-01-01T05:30:00+05:30","tsl":"1970-01-01T00:00:00","id":"3EB13B90-4668-4257-BDD6-40FB06671AD1","js":{"a":[1,"x\ty"]},"jb":{"b":null,"a":"é"},"txt":"tab\there \\ back\nslash"}"#,
            #"{"n":null,"i":0,"b":-1,"s":32767,"r":"NaN","d":"-Infinity","num":10000,"num2":99990000.00010,"num3":"NaN","t":false,"f":"t","day":"2024-02-29","day2":"1970-01-01","ts":"1900-06-15T12:00:00.5+01","ts2":"2038-01-19T03:14:08Z","ts3":"2000-01-01T00:00:00Z","tsl":"2024-02-29 12:34:56.123","id":"00000000-0000-0000-0000-000000000000","js":[],"jb":[1,2],"txt":""}"#,
        ]),
        ("fallback", [
            #"{"n":"0","i":1,"b":2,"s":3,"r":1e3,"d":1E-5,"num":1.5e3,"num2":2,"num3":"3","t":"yes","f":"on","day":"2024-1-5","day2":"2024-01-05","ts":"2024-01-05 10:00:00","ts2":"2024-01-05T10:00:00Z","ts3":"2024-01-05T10:00:00Z","tsl":"2024-01-05T10:00:00+02:00","id":"{3eb13b90-4668-4257-bdd6-40fb06671ad1}","js":{},"jb":{},"txt":"x"}"#,
        ]),
    ])
    func edgeValues(name: String, rows: [String]) throws {
        do { try edgeValuesBody(name: name, rows: rows) } catch { Issue.record("\(String(reflecting: error))") }
    }

    private func edgeValuesBody(name: String, rows: [String]) throws {
        let columns: [(String, String)] = [
            ("n", "text"), ("i", "integer"), ("b", "bigint"), ("s", "smallint"), ("r", "real"), ("d", "double precision"),
            ("num", "numeric"), ("num2", "numeric(20,5)"), ("num3", "numeric"), ("t", "boolean"), ("f", "boolean"),
            ("day", "date"), ("day2", "date"), ("ts", "timestamp with time zone"), ("ts2", "timestamp with time zone"),
            ("ts3", "timestamp with time zone"), ("tsl", "timestamp without time zone"), ("id", "uuid"), ("js", "json"),
            ("jb", "jsonb"), ("txt", "text"),
        ]
        // The canonical file really takes the binary path (else this test would prove nothing about it).
        var encoder = CopyRowEncoder(columns: columns.map(\.0))
        var text: [UInt8] = []
        try Array(("[" + rows.joined(separator: ",") + "]").utf8).withUnsafeBytes { try encoder.feed($0, into: &text) }
        try encoder.finish(into: &text)
        var transcoder = BinaryCopyTranscoder(types: columns.map { BinaryCopyType(sqlName: $0.1)! })
        var binaryRows: [UInt8] = []
        let transcodes = (try? transcoder.transcode(text, into: &binaryRows)) != nil
        #expect(transcodes == (name == "canonical"))

        var fingerprints: [String] = []
        for binary in [true, false] {
            let database = try TestServer.createDatabase("sp_copy")
            let connection = try PostgresConnection(url: database)
            try connection.execute("CREATE EXTENSION starpipe; SET TimeZone = 'America/New_York'")
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-copy-\(UInt32.random(in: 0...UInt32.max))").path
            let bucket = LocalBucket(root: directory)
            let data = Array(("[\n" + rows.joined(separator: ",\n") + "\n]\n").utf8)
            let key = ManifestKey.structuredDirectory(client: "edge", table: "values", date: SnapshotDate(iso: "2026-11-26")!, runID: name)
            try bucket.put(key + "data.json") { try $0.write(data) }
            let manifest = Manifest(
                client: "edge", table: "values", source: .init(kind: "test", database: nil, schema: nil, table: "values"),
                snapshotDate: "2026-11-26", extractedAt: "2026-11-26T00:00:00Z", runId: name, rowCount: Int64(rows.count),
                byteCount: Int64(data.count), sha256: SHA256.hash(data: data).lowercaseHex,
                columns: columns.map { Manifest.Column(name: $0.0, type: $0.1, nullable: true) }, primaryKey: [])
            try bucket.put(key + "manifest.json") { try $0.write(Array(manifest.encoded())) }
            var logger = Logger(label: "starpipe.test")
            logger.logLevel = .error
            do {
                try Worker(options: WorkerOptions(databaseURL: database, untilIdle: true, binaryCopy: binary), bucket: bucket, logger: logger).run()
            } catch {
                Issue.record("worker: \(String(reflecting: error))")
                return
            }
            let job = try connection.query("SELECT status, coalesce(error, '') FROM starpipe.job").rows.first
            #expect(job?[0] == "SUCCESS", "\(job?[1] ?? "no job")")
            fingerprints.append(try connection.query("""
                SELECT string_agg((to_jsonb(v_row) - '_ingested_at' - '_ingestion_id' - '_source_file')::text, E'\\n' ORDER BY _source_row)
                  FROM raw_edge."values" v_row
                """).scalar ?? "none")
        }
        #expect(fingerprints[0] == fingerprints[1])
    }

    @Test("a base64 column lands as its bytes in raw bytea, by either COPY setting; bad base64 fails the job naming file, row and column")
    func base64Columns() throws {
        let good = [#"{"id":1,"data":"AAEC/w==","note":"AAEC/w=="}"#, #"{"id":2,"data":"","note":null}"#, #"{"id":3,"data":null,"note":"x"}"#]
        let bad = [#"{"id":1,"data":"AAAA","note":"a"}"#, #"{"id":2,"data":"PHI-B64-VALUE=","note":"b"}"#]
        for binary in [true, false] {
            let database = try TestServer.createDatabase("sp_base64")
            let connection = try PostgresConnection(url: database)
            try connection.execute("CREATE EXTENSION starpipe")
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-base64-\(UInt32.random(in: 0...UInt32.max))").path
            let bucket = LocalBucket(root: directory)
            var dataKeys: [String: String] = [:]
            for (run, rows) in [("good", good), ("bad", bad)] {
                let data = Array(("[\n" + rows.joined(separator: ",\n") + "\n]\n").utf8)
                let key = ManifestKey.structuredDirectory(client: "blobs", table: run, date: SnapshotDate(iso: "2026-11-26")!, runID: run)
                dataKeys[run] = key + "data.json"
                try bucket.put(key + "data.json") { try $0.write(data) }
                let manifest = Manifest(
                    client: "blobs", table: run, source: .init(kind: "test", database: nil, schema: nil, table: run),
                    snapshotDate: "2026-11-26", extractedAt: "2026-11-26T00:00:00Z", runId: run, rowCount: Int64(rows.count),
                    byteCount: Int64(data.count), sha256: SHA256.hash(data: data).lowercaseHex,
                    columns: [Manifest.Column(name: "id", type: "integer", nullable: false),
                              Manifest.Column(name: "data", type: "bytea", nullable: true, encoding: Manifest.Column.base64),
                              Manifest.Column(name: "note", type: "text", nullable: true)],
                    primaryKey: ["id"])
                try bucket.put(key + "manifest.json") { try $0.write(Array(manifest.encoded())) }
            }
            var logger = Logger(label: "starpipe.test")
            logger.logLevel = .critical
            try? Worker(options: WorkerOptions(databaseURL: database, untilIdle: true, binaryCopy: binary), bucket: bucket, logger: logger).run()
            let jobs = Dictionary(uniqueKeysWithValues: try connection.query(
                "SELECT table_name, status, coalesce(error, '') FROM starpipe.job").rows.map { ($0[0]!, ($0[1]!, $0[2]!)) })
            #expect(jobs["good"]?.0 == "SUCCESS", "\(jobs)")
            let landed = try connection.query(
                "SELECT id, coalesce(encode(data, 'hex'), 'NULL'), coalesce(note, 'NULL') FROM raw_blobs.good ORDER BY id").rows
            #expect(landed.map { $0.compactMap { $0 } } == [["1", "000102ff", "AAEC/w=="], ["2", "", "NULL"], ["3", "NULL", "x"]],
                    "\(landed)")
            let failed = try #require(jobs["bad"])
            #expect(failed.0 == "FAILED" && failed.1.contains(#"data file \#(dataKeys["bad"]!): row 2, column "data": invalid base64"#),
                    "\(failed)")
            #expect(!failed.1.contains("PHI-B64"))
        }
    }
}
