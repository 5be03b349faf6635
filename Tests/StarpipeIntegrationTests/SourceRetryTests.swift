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
