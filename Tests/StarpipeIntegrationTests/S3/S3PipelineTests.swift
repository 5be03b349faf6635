import Crypto
import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipePostgres
import Testing

/// The extractor writing to S3 (multipart) and the worker reading from it, on a private moto_server: what the
/// file:// tests prove holds for s3:// too.
@Suite("S3 pipeline")
struct S3PipelineTests {
    /// A Synthea pipeline whose bucket is a fresh S3 bucket (prefix `landing`) on its own moto_server.
    private static func pipeline() throws -> (moto: TestMoto, bucket: S3Bucket, demo: SyntheaPipeline) {
        let moto = try TestMoto()
        let root = try moto.makeBucket()
        let bucket = try moto.open(root.location.bucket, prefix: "landing", extra: "&part_size=65536", credentials: TestMoto.anyCredentials)
        return (moto, bucket, try SyntheaPipeline(bucket: bucket))
    }

    private static func directory(_ manifest: Manifest) -> String {
        ManifestKey.structuredDirectory(client: manifest.client, table: manifest.table,
                                        date: SnapshotDate(iso: manifest.snapshotDate)!, runID: manifest.runId)
    }

    @Test("extract to S3 and work from it: every job succeeds; unchanged data again is DUPLICATE, production untouched")
    func endToEnd() throws {
        let (moto, bucket, demo) = try Self.pipeline()
        defer { moto.stop() }
        let manifests = try demo.extract()
        #expect(manifests.count == 18)
        // The largest files went up as multipart uploads (64 KiB parts); each is in the bucket whole, with its manifest.
        for manifest in manifests {
            #expect(try bucket.size(Self.directory(manifest) + "data.json") == manifest.byteCount)
            #expect(try bucket.size(Self.directory(manifest) + "manifest.json") != nil)
        }
        #expect(manifests.contains { $0.byteCount > 65_536 * 3 })
        #expect(try bucket.incompleteUploads().isEmpty)
        try demo.work()
        let jobs = try demo.jobs()
        #expect(jobs.count == 18)
        #expect(jobs.allSatisfy { $0.status == "SUCCESS" }, "\(jobs.filter { $0.status != "SUCCESS" })")
        let pipeline = try demo.pipeline()
        let source = try demo.source()
        for (table, target) in SyntheaPipeline.sourceKeys {
            let distinct = try demo.count("SELECT count(DISTINCT (\(target.key))) FROM public.\(table)", on: source)
            #expect(try demo.count("SELECT count(*) FROM production.\(target.target)", on: pipeline) == distinct, "\(table)")
        }
        let targets = SyntheaPipeline.sourceKeys.values.map(\.target).sorted()
        let before = try targets.map(demo.fingerprint)
        try demo.extract()
        try demo.work()
        let again = try demo.jobs()
        #expect(again.count == 36)
        #expect(again.suffix(18).allSatisfy { $0.status == "DUPLICATE" })
        #expect(try targets.map(demo.fingerprint) == before)
    }

    /// Extracts patients to S3, lets `damage` change the stored data file (and manifest), runs the worker, and
    /// returns the job's status and error after checking that raw holds nothing of it.
    private func ingestDamaged(_ damage: (inout Data, inout Manifest) throws -> Void) throws -> (status: String, error: String) {
        let (moto, bucket, demo) = try Self.pipeline()
        defer { moto.stop() }
        var manifest = try demo.extract(tables: ["patients"], runID: "damaged")[0]
        let directory = Self.directory(manifest)
        var data = try bucket.read(directory + "data.json")
        try damage(&data, &manifest)
        try bucket.put(directory + "data.json") { try $0.write(Array(data)) }
        let encoded = manifest.encoded()
        try bucket.put(directory + "manifest.json") { try $0.write(Array(encoded)) }
        try demo.work()
        let pipeline = try demo.pipeline()
        let row = try #require(try pipeline.query("SELECT status, error, starpipe.raw_version(job_id)::text FROM starpipe.job").rows.first)
        #expect(row[2] == nil, "a raw version exists for a damaged file")
        if try pipeline.query("SELECT to_regclass('raw_synthea_demo.patients')::text").scalar != nil {
            #expect(try demo.count("SELECT count(*) FROM raw_synthea_demo.patients", on: pipeline) == 0)
        }
        return (row[0]!, row[1] ?? "")
    }

    @Test("a truncated S3 object fails on its byte count before anything is streamed")
    func truncated() throws {
        let result = try ingestDamaged { data, _ in data = data.prefix(data.count - 200) }
        #expect(result.status == "FAILED")
        #expect(result.error.contains("byte count mismatch"))
        #expect(result.error.contains("data.json"))
    }

    @Test("an S3 object changed in place (same size) fails on its sha256, and the COPY is rolled back")
    func changed() throws {
        let result = try ingestDamaged { data, _ in
            let middle = data.count / 2
            data[middle] = data[middle] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        }
        #expect(result.status == "FAILED")
        #expect(result.error.contains("sha256 mismatch"))
    }

    @Test("data in S3 without a manifest is never ingested")
    func dataWithoutManifest() throws {
        let (moto, bucket, demo) = try Self.pipeline()
        defer { moto.stop() }
        let manifest = try demo.extract(tables: ["patients"], runID: "no-manifest")[0]
        try bucket.delete(Self.directory(manifest) + "manifest.json")
        #expect(try bucket.size(Self.directory(manifest) + "data.json") == manifest.byteCount)
        try demo.work()
        #expect(try demo.jobs().isEmpty)
    }

    @Test("a multipart upload never completed leaves no object: nothing is registered, and a manifest naming it fails the job")
    func incompleteMultipart() throws {
        let (moto, bucket, demo) = try Self.pipeline()
        defer { moto.stop() }
        let manifest = try demo.extract(tables: ["patients"], runID: "complete")[0]
        // What a killed extraction leaves: an upload with parts, never completed, and no manifest.
        let key = "landing/" + ManifestKey.structuredDirectory(client: manifest.client, table: manifest.table,
                                                              date: SnapshotDate(iso: manifest.snapshotDate)!, runID: "killed") + "data.json"
        let path = "/\(bucket.location.bucket)/" + S3URIEncoding.encode(key, keepSlash: true)
        let started = try moto.request("POST", path: path, query: [("uploads", "")], service: "s3")
        let uploadID = try #require(String(decoding: started.body, as: UTF8.self)
            .components(separatedBy: "<UploadId>").dropFirst().first?.components(separatedBy: "</UploadId>").first)
        let part = try moto.request("PUT", path: path, query: [("partNumber", "1"), ("uploadId", uploadID)], service: "s3",
                                    body: Array(repeating: UInt8(ascii: "["), count: 1000))
        #expect(part.status == 200)
        #expect(try bucket.incompleteUploads().count == 1)
        #expect(try bucket.list().filter { $0.contains("run_id=killed") }.isEmpty)
        // The completed run is registered; the killed one leaves nothing to register.
        try demo.work()
        #expect(try demo.jobs().map(\.status) == ["SUCCESS"])
        // A manifest written by hand for the unfinished data fails its job on the missing data, loading nothing.
        var orphan = manifest
        orphan.runId = "killed"
        orphan.sha256 = String(repeating: "0", count: 64) // not the completed run's content, which would be DUPLICATE
        let orphanKey = ManifestKey.structuredDirectory(client: orphan.client, table: orphan.table,
                                                        date: SnapshotDate(iso: orphan.snapshotDate)!, runID: "killed") + "manifest.json"
        let encoded = orphan.encoded()
        try bucket.put(orphanKey) { try $0.write(Array(encoded)) }
        try demo.work()
        let jobs = try demo.jobs()
        #expect(jobs.count == 2)
        #expect(jobs.last?.status == "FAILED")
        #expect(jobs.last?.error?.contains("missing") == true, "\(jobs.last?.error ?? "")")
    }

    @Test("SIGTERM during an extraction to S3 aborts its multipart upload and writes no manifest")
    func cancelledExtraction() throws {
        let moto = try TestMoto()
        let name = "sp-cancel-\(UInt32.random(in: 0...UInt32.max))"
        let bucket = try moto.makeBucket(name)
        let source = try TestServer.createDatabase("sp_cancel")
        try PostgresConnection(url: source).execute("""
            CREATE TABLE big AS SELECT g AS id, md5(g::text) AS a, repeat('x', 200) AS b FROM generate_series(1, 200000) g;
            ALTER TABLE big ADD PRIMARY KEY (id)
            """)
        let process = Process.unblocked(WorkerProcess.executable.path, [
            "extract", "--source", source, "--client", "acme", "--tables", "big", "--log-level", "error",
            "--bucket", moto.bucketURL(name).replacingOccurrences(of: "part_size=1024", with: "part_size=1048576"),
        ])
        process.environment = ProcessInfo.processInfo.environment.merging([
            "AWS_ACCESS_KEY_ID": TestMoto.anyCredentials.accessKeyID, "AWS_SECRET_ACCESS_KEY": "starpipe-test-secret",
        ]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // Wait until the data file's multipart upload has started, then stop the extractor.
        let end = Date().addingTimeInterval(60)
        while Date() < end, process.isRunning, try bucket.incompleteUploads().isEmpty { Thread.sleep(forTimeInterval: 0.05) }
        #expect(try bucket.incompleteUploads().count == 1, "the extraction ended before its upload could be interrupted")
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(try bucket.list().isEmpty)
        #expect(try bucket.incompleteUploads().isEmpty)
    }
}
