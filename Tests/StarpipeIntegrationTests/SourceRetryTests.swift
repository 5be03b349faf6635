import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipePostgres
import Testing

/// The extractor against a source that fails for a while: a server not yet listening, a table whose lock is held,
/// a connection killed in the middle of a table. Each run ends with the same file as an undisturbed run.
@Suite("Source retries", .serialized)
struct SourceRetryTests {
    static func table(rows: Int) throws -> (url: String, connection: PostgresConnection) {
        let url = try TestServer.createDatabase("sp_retry")
        let connection = try PostgresConnection(url: url)
        try connection.execute("""
            CREATE TABLE visits (id integer PRIMARY KEY, note text, at timestamptz);
            INSERT INTO visits SELECT g, 'note ' || g, timestamptz '2026-01-01' + g * interval '1 minute' FROM generate_series(1, \(rows)) g;
            """)
        return (url, connection)
    }

    static func bucket() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-retry-\(UInt32.random(in: 0...UInt32.max))").path
    }

    static func manifest(_ bucket: String, run: String) throws -> Manifest {
        let local = LocalBucket(root: bucket)
        let key = try #require(try local.list().first { $0.contains("run_id=\(run)/") && $0.hasSuffix("manifest.json") })
        return try Manifest.decode(local.read(key))
    }

    @Test("a source that is not listening yet is retried with backoff until it is; a wrong database fails at once")
    func connectRetry() throws {
        let (url, _) = try Self.table(rows: 50)
        let database = String(url.split(separator: "/").last!)
        let port = try LoopbackPort.free()
        let bucket = Self.bucket()
        defer { try? FileManager.default.removeItem(atPath: bucket) }
        let extract = try ExtractProcess([
            "--source", "postgresql://\(TestServer.user)@127.0.0.1:\(port)/\(database)", "--client", "acme",
            "--bucket", "file://\(bucket)", "--run-id", "late", "--retries", "20",
        ])
        #expect(extract.waitForOutput("transient failure of the source; retrying", timeout: 60), "\(extract.output)")
        // The network path comes up: a real TCP relay to the test server, on the port the extractor keeps trying.
        let relay = Process()
        relay.executableURL = URL(fileURLWithPath: "/usr/bin/socat")
        relay.arguments = ["TCP-LISTEN:\(port),bind=127.0.0.1,reuseaddr,fork", "TCP:\(TestServer.host):\(TestServer.port)"]
        try relay.run()
        // Test threads block signals, and children inherit the mask: SIGKILL is the one a child cannot ignore.
        defer { kill(relay.processIdentifier, SIGKILL); relay.waitUntilExit() }
        let (status, output) = extract.finish(timeout: 120)
        #expect(status == 0, "\(output)")
        #expect(try Self.manifest(bucket, run: "late").rowCount == 50)

        let missing = try ExtractProcess([
            "--source", "postgresql://\(TestServer.user)@\(TestServer.host):\(TestServer.port)/sp_no_such_database", "--client", "acme",
            "--bucket", "file://\(bucket)", "--run-id", "never", "--retries", "20",
        ])
        let refused = missing.finish(timeout: 60)
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("does not exist"))
        #expect(!refused.output.contains("retrying"), "a permanent failure is not retried")
    }

    @Test("a table whose lock is held fails its page after lock_timeout and is read again, in the same snapshot, once the lock is released")
    func lockTimeoutRetry() throws {
        let (url, connection) = try Self.table(rows: 500)
        let bucket = Self.bucket()
        defer { try? FileManager.default.removeItem(atPath: bucket) }
        let quiet = try ExtractProcess(["--source", url, "--client", "acme", "--bucket", "file://\(bucket)", "--run-id", "quiet"])
        #expect(quiet.finish(timeout: 120).status == 0)
        let locker = try PostgresConnection(url: url)
        try locker.execute("BEGIN; LOCK TABLE visits IN ACCESS EXCLUSIVE MODE")
        let extract = try ExtractProcess([
            "--source", url, "--client", "acme", "--bucket", "file://\(bucket)", "--run-id", "locked",
            "--lock-timeout", "0.2", "--retries", "30", "--page-size", "100",
        ])
        #expect(extract.waitForOutput("transient failure of the source; retrying", timeout: 60), "\(extract.output)")
        // Rows changed after the extractor's snapshot was taken are not in its file.
        try locker.execute("UPDATE visits SET note = 'changed' WHERE id = 1; COMMIT")
        let (status, output) = extract.finish(timeout: 120)
        #expect(status == 0, "\(output)")
        #expect(output.contains("lock timeout") || output.contains("55P03"), "\(output)")
        #expect(try Self.manifest(bucket, run: "locked").sha256 == Self.manifest(bucket, run: "quiet").sha256)
        _ = connection
    }

    @Test("a connection killed in the middle of a table: the upload is abandoned and the table read again from its start in a new snapshot")
    func connectionLostMidTable() throws {
        let (url, connection) = try Self.table(rows: 100_000)
        let bucket = Self.bucket()
        defer { try? FileManager.default.removeItem(atPath: bucket) }
        let quiet = try ExtractProcess(["--source", url, "--client", "acme", "--bucket", "file://\(bucket)", "--run-id", "quiet"])
        #expect(quiet.finish(timeout: 120).status == 0)
        let extract = try ExtractProcess([
            "--source", url, "--client", "acme", "--bucket", "file://\(bucket)", "--run-id", "killed", "--page-size", "50",
        ])
        // Once a later page is streaming (its statement names the previous page's last key), end its backend.
        var killed = false
        let end = Date().addingTimeInterval(60)
        while !killed, extract.process.isRunning, Date() < end {
            killed = try connection.query("""
                SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE application_name = 'starpipe-extract' AND query LIKE 'COPY (%WHERE%' AND pid <> pg_backend_pid()
                """).scalar != "0"
            if !killed { Thread.sleep(forTimeInterval: 0.005) }
        }
        #expect(killed, "the extractor's backend was ended mid-table")
        let (status, output) = extract.finish(timeout: 120)
        #expect(status == 0, "\(output)")
        #expect(output.contains("the connection to the source was lost; reading the table again from its start in a new snapshot"), "\(output)")
        let again = try Self.manifest(bucket, run: "killed")
        let first = try Self.manifest(bucket, run: "quiet")
        #expect(again.rowCount == 100_000)
        #expect(again.sha256 == first.sha256)
        #expect(again.extractedAt > first.extractedAt)
        // Nothing of the abandoned upload is left beside the committed file.
        #expect(try LocalBucket(root: bucket).list().filter { $0.contains("run_id=killed/") }.count == 2)
    }
}

/// The same failures against MariaDB: a page interrupted by `KILL QUERY` is read again in the same snapshot; a
/// connection killed mid-table is reopened and the table read again in a new snapshot.
@Suite("Source retries: MariaDB", .serialized)
struct MariaDBRetryTests {
    /// What the `mariadb` client prints for `sql`, tab-separated, without column names.
    static func query(_ sql: String) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["mariadb", "--no-defaults", "-h", TestMariaDB.host, "-P", TestMariaDB.port, "-u", "root", "-N", "-e", sql]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let text = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs the extractor with pages of 10,000 over 40,000 rows of 2 kB; once a later page is streaming, `kill` (`QUERY` or
    /// `CONNECTION`) ends it once. A page is larger than the socket's buffers, so the server is still sending it (and
    /// the statement still running) while the extractor encodes. Returns the manifests of an undisturbed run and of the disturbed one, and its output.
    static func disturbed(_ kill: String) throws -> (quiet: Manifest, disturbed: Manifest, output: String, killed: Bool) {
        let database = try TestMariaDB.createDatabase("sp_retry")
        try TestMariaDB.execute(database, """
            CREATE TABLE visits (id INT PRIMARY KEY, note VARCHAR(4000), at DATETIME(6));
            INSERT INTO visits SELECT seq, CONCAT('note ', seq, REPEAT(' x', 1000)), TIMESTAMP '2026-01-01 00:00:00' + INTERVAL seq MINUTE FROM seq_1_to_40000;
            """)
        let bucket = SourceRetryTests.bucket()
        defer { try? FileManager.default.removeItem(atPath: bucket) }
        let url = TestMariaDB.url(database)
        let quiet = try ExtractProcess(["--source", url, "--client", "acme", "--bucket", "file://\(bucket)", "--run-id", "quiet"])
        #expect(quiet.finish(timeout: 120).status == 0)
        let extract = try ExtractProcess([
            "--source", url, "--client", "acme", "--bucket", "file://\(bucket)", "--run-id", "disturbed", "--page-size", "10000",
        ])
        var killed = false
        let end = Date().addingTimeInterval(60)
        while !killed, extract.process.isRunning, Date() < end {
            let id = try query("""
                SELECT ID FROM information_schema.PROCESSLIST WHERE DB = '\(database)' AND INFO LIKE 'SELECT%WHERE%' AND ID <> CONNECTION_ID() LIMIT 1
                """)
            if let number = Int(id) {
                _ = try query("KILL \(kill) \(number)")
                killed = true
            } else {
                Thread.sleep(forTimeInterval: 0.005)
            }
        }
        let (status, output) = extract.finish(timeout: 120)
        #expect(status == 0, "\(output)")
        return (try SourceRetryTests.manifest(bucket, run: "quiet"), try SourceRetryTests.manifest(bucket, run: "disturbed"), output, killed)
    }

    @Test("a page interrupted by KILL QUERY is read again in the same snapshot, skipping the rows already written")
    func interruptedPage() throws {
        let run = try Self.disturbed("QUERY")
        #expect(run.killed)
        #expect(run.output.contains("transient failure of the source; retrying"), "\(run.output)")
        #expect(run.disturbed.rowCount == 40_000)
        #expect(run.disturbed.sha256 == run.quiet.sha256)
    }

    @Test("a connection killed mid-table is reopened and the table read again from its start in a new snapshot")
    func killedConnection() throws {
        let run = try Self.disturbed("CONNECTION")
        #expect(run.killed)
        #expect(run.output.contains("the connection to the source was lost; reading the table again from its start in a new snapshot"), "\(run.output)")
        #expect(run.disturbed.sha256 == run.quiet.sha256)
        #expect(run.disturbed.extractedAt > run.quiet.extractedAt)
    }
}
