import Crypto
import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipePostgres
import Testing

/// The worker pins its sessions' settings: a database whose default is New York time and day-first dates
/// loads and promotes a file exactly as a database with the defaults does.
@Suite("Session settings")
struct SessionSettingsTests {
    @Test("a database set to America/New_York and DMY lands the same raw and production values as one set to UTC")
    func hostileDatabaseDefaults() throws {
        // Values the text path reads (no offset, so the binary path refuses them): the session zone would decide.
        let rows = [#"{"id":1,"at":"2026-01-01 10:00:00","day":"2026-03-04","took":"1 day 02:00:00"}"#,
                    #"{"id":2,"at":"2026-07-01T23:30:00.25","day":"2026-12-31","took":"-3 hours"}"#]
        var results: [[String]] = []
        for hostile in [false, true] {
            let database = try TestServer.createDatabase("sp_settings")
            let setup = try PostgresConnection(url: database)
            try setup.execute("""
                CREATE EXTENSION starpipe;
                CREATE SCHEMA production;
                CREATE TABLE production.visits (id integer PRIMARY KEY, at timestamptz, day date, took interval);
                INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
                GRANT USAGE ON SCHEMA production TO starpipe_writer;
                GRANT SELECT, INSERT, UPDATE ON production.visits TO starpipe_writer;
                """)
            try setup.query("SELECT starpipe.apply_mapping($1::jsonb)", [#"""
                {"version": 1, "client": "tz", "target_schema": "production", "tables": {"visits": {"target": "visits",
                 "conflict_key": ["id"], "columns": {"id": {"from": "id"}, "at": {"from": "at"}, "day": {"from": "day"},
                 "took": {"from": "took"}}}}}
                """#])
            if hostile {
                let name = String(database.split(separator: "/").last!)
                try setup.execute("""
                    ALTER DATABASE \(name) SET TimeZone = 'America/New_York';
                    ALTER DATABASE \(name) SET DateStyle = 'SQL, DMY';
                    ALTER DATABASE \(name) SET IntervalStyle = 'sql_standard';
                    ALTER DATABASE \(name) SET extra_float_digits = -15;
                    """)
            }
            let bucketDirectory = FileManager.default.temporaryDirectory
                .appendingPathComponent("starpipe-settings-\(UInt32.random(in: 0...UInt32.max))").path
            try Self.write(rows: rows, to: LocalBucket(root: bucketDirectory))
            let worker = try WorkerProcess(database: database, bucket: bucketDirectory, arguments: ["--until-idle"])
            #expect(worker.waitForExit(timeout: 60) == 0)
            let check = try PostgresConnection(url: database, settings: PostgresConnection.pipelineSettings)
            #expect(try check.query("SELECT status FROM starpipe.job").scalar == "SUCCESS", "\(worker.log())")
            results.append(try check.query("""
                SELECT r.id || ' ' || r.at || ' ' || p.at || ' ' || p.day || ' ' || p.took
                  FROM raw_tz.visits r JOIN production.visits p USING (id) ORDER BY id
                """).rows.map { $0[0] ?? "" })
        }
        #expect(results[0] == ["1 2026-01-01 10:00:00+00 2026-01-01 10:00:00+00 2026-03-04 1 day 02:00:00",
                               "2 2026-07-01 23:30:00.25+00 2026-07-01 23:30:00.25+00 2026-12-31 -03:00:00"])
        #expect(results[1] == results[0])
    }

    private static func write(rows: [String], to bucket: LocalBucket) throws {
        let directory = ManifestKey.structuredDirectory(client: "tz", table: "visits", date: SnapshotDate(iso: "2026-11-26")!, runID: "r1")
        let data = Array(rows.joined(separator: "\n").utf8) + [0x0A]
        try bucket.put(directory + "data.json") { writer in try writer.write(data) }
        let manifest = Manifest(
            client: "tz", table: "visits", source: .init(kind: "postgres", database: "test", schema: "public", table: "visits"),
            snapshotDate: "2026-11-26", extractedAt: "2026-11-26T10:00:00Z", runId: "r1", format: .ndjson, rowCount: Int64(rows.count),
            byteCount: Int64(data.count), sha256: SHA256.hash(data: data).lowercaseHex,
            columns: [.init(name: "id", type: "integer", nullable: false), .init(name: "at", type: "timestamp with time zone", nullable: true),
                      .init(name: "day", type: "text", nullable: true), .init(name: "took", type: "interval", nullable: true)],
            primaryKey: ["id"])
        try bucket.put(directory + "manifest.json") { writer in try writer.write(Array(manifest.encoded())) }
    }
}
