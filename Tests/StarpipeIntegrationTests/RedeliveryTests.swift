import Crypto
import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipePostgres
import Testing

/// Flat-layout files carry no run id in their name, so a client's corrected upload under the same name must be
/// noticed, never silently ignored because the name is known.
@Suite("Re-delivered files")
struct RedeliveryTests {
    @Test("a corrected flat file under a known name is registered and loaded; different content under a known run id is refused")
    func correctedFlatFile() throws {
        let database = try TestServer.createDatabase("sp_redeliver")
        try PostgresConnection(url: database).execute("CREATE EXTENSION starpipe")
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("starpipe-redeliver-\(UInt32.random(in: 0...UInt32.max))").path
        let bucket = LocalBucket(root: directory)
        func deliver(run: String, rows: [String]) throws {
            let data = Array(rows.joined(separator: "\n").utf8) + [0x0A]
            try bucket.put("PATIENTS-ACME-01012026.json") { writer in try writer.write(data) }
            let manifest = Manifest(
                client: "acme", table: "patients", source: .init(kind: "postgres", database: "ehr", schema: "public", table: "patients"),
                snapshotDate: "2026-01-01", extractedAt: "2026-01-01T08:00:00Z", runId: run, dataFile: "PATIENTS-ACME-01012026.json",
                format: .ndjson, rowCount: Int64(rows.count), byteCount: Int64(data.count), sha256: SHA256.hash(data: data).lowercaseHex,
                columns: [.init(name: "id", type: "integer", nullable: false)], primaryKey: ["id"])
            try bucket.put("PATIENTS-ACME-01012026.manifest.json") { writer in try writer.write(Array(manifest.encoded())) }
        }
        func work() throws -> String {
            let worker = try WorkerProcess(database: database, bucket: directory, arguments: ["--until-idle"])
            #expect(worker.waitForExit(timeout: 60) == 0)
            return worker.log()
        }
        let ledger = try PostgresConnection(url: database)
        func jobs() throws -> [String] {
            try ledger.query("SELECT run_id || ' ' || status || ' ' || coalesce(rows_raw::text, '-') FROM starpipe.job ORDER BY job_id")
                .rows.map { $0[0] ?? "" }
        }

        try deliver(run: "r1", rows: [#"{"id":1}"#])
        _ = try work()
        #expect(try jobs() == ["r1 SUCCESS 1"])
        // The same name again, unchanged: nothing new.
        _ = try work()
        #expect(try jobs() == ["r1 SUCCESS 1"])
        // The client's corrected re-run under the same name.
        try deliver(run: "r2", rows: [#"{"id":1}"#, #"{"id":2}"#])
        _ = try work()
        #expect(try jobs() == ["r1 SUCCESS 1", "r2 SUCCESS 2"])
        // Different content under a run id the ledger has: refused and reported, never dropped in silence.
        try deliver(run: "r2", rows: [#"{"id":3}"#])
        let log = try work()
        #expect(try jobs() == ["r1 SUCCESS 1", "r2 SUCCESS 2"])
        #expect(log.contains("manifest rejected by the database") && log.contains("PATIENTS-ACME-01012026.manifest.json"))
        #expect(log.contains("a different data file is already registered"))
    }
}
