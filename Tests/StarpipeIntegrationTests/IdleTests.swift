import Foundation
import StarpipePostgres
import Testing

/// A worker whose queue holds only work that cannot be claimed (a day-2 file behind a BLOCKED day 1) sleeps
/// until something can change, instead of waking every few milliseconds to rescan the bucket.
@Suite("Idle worker")
struct IdleTests {
    @Test("an idle worker beside a BLOCKED older snapshot uses under 2 % of one core over 30 s")
    func blockedOlderSnapshotDoesNotSpin() throws {
        let large = try LargeFile(rows: 10)
        let connection = try large.connection()
        // Day 1 is held BLOCKED (a gate failed, waiting for a human); day 2 waits behind it.
        for (date, run) in [("2026-11-01", "d1"), ("2026-11-02", "d2")] {
            try connection.query("""
                SELECT starpipe.register(pg_catalog.jsonb_build_object('format_version', 1, 'client', 'idle', 'table', 'visits',
                    'snapshot_date', $1::text, 'run_id', $2::text, 'data_file', 'data.json', 'format', 'ndjson', 'row_count', 0,
                    'byte_count', 0, 'sha256', pg_catalog.encode(pg_catalog.sha256($2::bytea), 'hex'),
                    'columns', '[{"name": "id", "type": "integer"}]'::jsonb), 'idle/' || $2, 'idle/' || $2 || '/data')
                """, [date, run])
        }
        try connection.query("SELECT starpipe.fail(job_id, fence, 'held for review', NULL, 'BLOCKED') FROM starpipe.claim('test')")
        #expect(try connection.query("SELECT starpipe.next_claimable_at() IS NULL").scalar == "t")

        // The bucket's own file is loaded first, then the worker has nothing it can claim.
        let worker = try WorkerProcess(database: large.pipelineURL, bucket: large.bucketDirectory, arguments: [])
        #expect(try large.wait(timeout: 30) { try large.job()?.status == "SUCCESS" })
        Thread.sleep(forTimeInterval: 2)
        let before = try Self.cpuSeconds(of: worker.process.processIdentifier)
        let start = Date()
        Thread.sleep(forTimeInterval: 30)
        let used = try Self.cpuSeconds(of: worker.process.processIdentifier) - before
        let share = used / Date().timeIntervalSince(start)
        print("idle worker beside a blocked snapshot: \(String(format: "%.3f", used)) s CPU in 30 s (\(String(format: "%.2f", share * 100)) % of a core)")
        #expect(share < 0.02)
        #expect(try connection.query("SELECT status FROM starpipe.job WHERE run_id = 'd2'").scalar == "PENDING")
        worker.signal(SIGTERM)
        #expect(worker.waitForExit(timeout: 30) == 0)
    }

    /// User plus system CPU time of a process so far, in seconds (Linux /proc).
    static func cpuSeconds(of pid: Int32) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
        guard let close = stat.lastIndex(of: ")") else { throw CocoaError(.fileReadCorruptFile) }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw CocoaError(.fileReadCorruptFile)
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
