import Foundation
import StarpipeCore
import StarpipeMapping
import StarpipePostgres
import Testing

/// The extractor executable with a config file: the one-file `starpipe-extract` a client runs, and an incremental run
/// killed with SIGKILL mid-table, then run again and landed in production by the worker.
@Suite("starpipe-extract and incremental runs of the executable")
struct StandaloneExtractTests {
    static let tables = """
        CREATE TABLE a (id int PRIMARY KEY, val text, updated_at timestamptz);
        CREATE TABLE b (id int PRIMARY KEY, val text, updated_at timestamptz);
        INSERT INTO a SELECT g, 'a' || g, now() - interval '1 day' FROM generate_series(1, 500) g;
        INSERT INTO b SELECT g, 'b' || g, now() - interval '1 day' FROM generate_series(1, 500) g;
        """

    /// A config file for `source`, with state and bucket beside it.
    static func config(source: String, directory: String, bucket: String, extra: String = "") throws -> String {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/starpipe-extract.yml"
        try """
            source: \(source)
            client: inc
            bucket: file://\(bucket)
            mode: incremental
            page_size: 50
            incremental:
              state: state
              lookback: 0s
              skew_margin: 0s
              null_cursor: include
              tables:
                a: { cursor: updated_at }
                b: { cursor: updated_at }
            \(extra)
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The manifests under `bucket` for `table`, oldest extraction first.
    static func manifests(_ bucket: String, table: String) throws -> [Manifest] {
        let paths = (FileManager.default.enumerator(atPath: bucket)?.allObjects as? [String] ?? [])
            .filter { $0.hasPrefix("client=inc/table=\(table)/") && $0.hasSuffix("/manifest.json") }
        return try paths.map { try Manifest.decode(Data(contentsOf: URL(fileURLWithPath: bucket + "/" + $0))) }
            .sorted { $0.extractedAt < $1.extractedAt }
    }

    @Test("invoked as starpipe-extract (a symbolic link), it runs extract with the config beside it; flags still override")
    func standalone() throws {
        let source = try TestServer.createDatabase("sp_standalone")
        try PostgresConnection(url: source).execute(Self.tables)
        let directory = SourceLanding.temporaryDirectory()
        let bucket = SourceLanding.temporaryDirectory()
        _ = try Self.config(source: source, directory: directory, bucket: bucket)
        let link = directory + "/starpipe-extract"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: WorkerProcess.executable.path)
        func run(_ arguments: [String], in working: String) throws -> (status: Int32, output: String) {
            let process = Process.unblocked(link, arguments)
            process.currentDirectoryURL = URL(fileURLWithPath: working)
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, output)
        }
        // Run from another directory: the config is found beside the executable.
        let first = try run([], in: FileManager.default.temporaryDirectory.path)
        #expect(first.status == 0, "\(first.output)")
        #expect(first.output.contains("incremental"))
        #expect(try Self.manifests(bucket, table: "a").map(\.rowCount) == [500])
        #expect(try Self.manifests(bucket, table: "b").map(\.mode) == [.incremental])
        #expect(FileManager.default.fileExists(atPath: directory + "/state/client=inc.json"), "state beside the config")
        // A flag overrides the file: only table a, in full.
        let second = try run(["--tables", "a", "--full"], in: directory)
        #expect(second.status == 0, "\(second.output)")
        #expect(try Self.manifests(bucket, table: "a").map(\.mode) == [.incremental, .full])
        #expect(try Self.manifests(bucket, table: "b").count == 1)
        // No config anywhere: it says where it looked.
        let bare = SourceLanding.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: bare, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: bare + "/starpipe-extract", withDestinationPath: WorkerProcess.executable.path)
        let process = Process.unblocked(bare + "/starpipe-extract", [])
        process.currentDirectoryURL = URL(fileURLWithPath: bare)
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
        #expect(output.contains("starpipe-extract.yml") && output.contains(bare))
        // A bad config is named with its line.
        let bad = try ExtractCommand.run(["--config", try Self.config(source: source, directory: SourceLanding.temporaryDirectory(),
                                                                        bucket: bucket, extra: "tabels: [a]")])
        #expect(bad.status != 0 && bad.output.contains("line 14: tabels: unknown key"), "\(bad.output)")
    }

    @Test("killed with SIGKILL mid-table and run again, every row lands in production once, with its latest values")
    func killAndResume() throws {
        let sourceURL = try TestServer.createDatabase("sp_killed")
        let source = try PostgresConnection(url: sourceURL)
        try source.execute(Self.tables)
        let pipelineURL = try TestServer.createDatabase("sp_killed_pipeline")
        let pipeline = try PostgresConnection(url: pipelineURL, settings: PostgresConnection.pipelineSettings)
        try pipeline.execute("""
            CREATE EXTENSION starpipe; CREATE SCHEMA production; INSERT INTO starpipe.target_schema (schema_name) VALUES ('production');
            CREATE TABLE production.a (id int PRIMARY KEY, val text, updated_at timestamptz);
            CREATE TABLE production.b (id int PRIMARY KEY, val text, updated_at timestamptz);
            GRANT USAGE ON SCHEMA production TO starpipe_writer;
            GRANT SELECT, INSERT, UPDATE ON production.a, production.b TO starpipe_writer;
            """)
        let table = { (name: String) in """
              \(name):
                target: \(name)
                conflict_key: [id]
                columns:
                  id: { from: id }
                  val: { from: val }
                  updated_at: { from: updated_at }
            """ }
        try MappingConfig(yaml: "version: 1\nclient: inc\ntarget_schema: production\ntables:\n\(table("a"))\n\(table("b"))\n").apply(to: pipeline)
        let directory = SourceLanding.temporaryDirectory()
        let bucket = SourceLanding.temporaryDirectory()
        let config = try Self.config(source: sourceURL, directory: directory, bucket: bucket)
        // Run ids in run order: the default ones of runs within one second list in random order, and the pipeline
        // applies an incremental file registered after a newer one as an older snapshot (it keeps production's rows).
        let first = try ExtractCommand.run(["--config", config, "--run-id", "r1"])
        #expect(first.status == 0, "\(first.output)")

        // Changes in both tables, then table b locked so the next run stops inside b's data file.
        try source.execute("""
            UPDATE a SET val = 'a2-' || id, updated_at = now() WHERE id % 7 = 0;
            INSERT INTO a SELECT g, 'a-new' || g, now() FROM generate_series(501, 560) g;
            UPDATE b SET val = 'b2-' || id, updated_at = now() WHERE id % 5 = 0;
            INSERT INTO b SELECT g, 'b-new' || g, now() FROM generate_series(501, 530) g;
            """)
        let locker = try PostgresConnection(url: sourceURL)
        try locker.execute("BEGIN; LOCK TABLE b IN ACCESS EXCLUSIVE MODE")
        let killed = Process.unblocked(WorkerProcess.executable.path, ["extract", "--config", config, "--run-id", "r2"])
        killed.standardOutput = FileHandle.nullDevice
        killed.standardError = FileHandle.nullDevice
        try killed.run()
        // Wait (bounded, for safety only) until the run's page query of b waits for the lock: a's manifest is
        // committed and b's data file is open.
        var waiting = false
        for _ in 0..<3000 where !waiting {
            waiting = try source.query("""
                SELECT count(*) FROM pg_locks l JOIN pg_stat_activity s USING (pid)
                 WHERE NOT l.granted AND l.relation = 'b'::regclass AND s.application_name = 'starpipe-extract'
                """).scalar == "1"
            if !waiting { Thread.sleep(forTimeInterval: 0.02) }
        }
        #expect(waiting)
        kill(killed.processIdentifier, SIGKILL)
        killed.waitUntilExit()
        #expect(killed.terminationReason == .uncaughtSignal)
        try locker.execute("COMMIT")

        let a = try Self.manifests(bucket, table: "a")
        let b = try Self.manifests(bucket, table: "b")
        #expect(a.count == 2 && b.count == 1, "a was committed by the killed run, b was not")
        let state = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/state/client=inc.json"))) as! [String: Any]
        let marks = (state["tables"] as! [String: [String: Any]]).mapValues { $0["high_watermark"] as! String }
        #expect(marks.first { $0.key.hasSuffix("/a") }?.value == a.last?.incremental?.highWatermark)
        #expect(marks.first { $0.key.hasSuffix("/b") }?.value == b.last?.incremental?.highWatermark, "b's watermark did not move")

        let again = try ExtractCommand.run(["--config", config, "--run-id", "r3"])
        #expect(again.status == 0, "\(again.output)")
        let resumed = try Self.manifests(bucket, table: "b")
        #expect(resumed.count == 2)
        #expect(resumed.last?.incremental?.lowWatermark == b.first?.incremental?.highWatermark)
        #expect(resumed.last?.rowCount == 130, "b's 100 changed and 30 new rows")

        let worker = try WorkerProcess(database: pipelineURL, bucket: bucket, arguments: ["--until-idle"])
        #expect(worker.waitForExit(timeout: 300) == 0, "\(worker.log())")
        for job in try pipeline.query("SELECT table_name, status, coalesce(error, '') FROM starpipe.job ORDER BY job_id").rows {
            #expect(["SUCCESS", "DUPLICATE"].contains(job[1]!), "\(job[0]!): \(job[1]!) \(job[2]!)")
        }
        let ledger = try pipeline.query("""
            SELECT string_agg(concat_ws(' ', j.job_id, j.table_name, j.status, j.manifest->>'run_id', j.manifest->>'extracted_at',
                                        j.manifest->>'row_count', (SELECT string_agg(e.event || coalesce(e.detail::text, ''), ';' ORDER BY e.event_id)
                                                                     FROM starpipe.job_event e WHERE e.job_id = j.job_id)), E'\n' ORDER BY j.job_id)
              FROM starpipe.job j
            """).scalar ?? ""
        for name in ["a", "b"] {
            let query = "SELECT id, val, (extract(epoch FROM updated_at) * 1000000)::bigint::text FROM %@ ORDER BY id"
            let expected = try source.query(query.replacingOccurrences(of: "%@", with: name)).rows
            let landed = try pipeline.query(query.replacingOccurrences(of: "%@", with: "production.\(name)")).rows
            #expect(landed.count == expected.count, "\(name): \(landed.count) rows, \(expected.count) at the source")
            let differing = zip(landed, expected).filter { $0 != $1 }.map { "\($0.0[0]!): \($0.0.map { $0 ?? "NULL" }) vs \($0.1.map { $0 ?? "NULL" })" }
            #expect(differing.isEmpty, "\(name): rows that differ from the source (production vs source): \(differing.prefix(3)); jobs:\n\(ledger)")
        }
    }
}
