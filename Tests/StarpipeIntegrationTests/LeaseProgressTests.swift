import Crypto
import Foundation
import Logging
import StarpipeCore
import StarpipePostgres
@testable import StarpipeWorker
import Testing

/// Issue 14's stuck-job alert counts from the last event or the last progress: the lease keeper's heartbeats carry
/// the figure the stage reports (a raw load's bytes), so the ledger sees a long stage move, and sees a stalled one
/// stand still however often its lease is renewed.
@Suite("Lease keeper: progress in the heartbeat", .serialized)
struct LeaseProgressTests {
    @Test("a reported figure reaches the ledger with its time; renewals with the same figure leave that time alone")
    func heartbeatsCarryProgress() throws {
        let url = try TestServer.createDatabase("sp_progress")
        let connection = try PostgresConnection(url: url)
        try connection.execute("CREATE EXTENSION starpipe")
        let data = Array("[{\"ID\": 1}]\n".utf8)
        let manifest = Manifest(
            client: "progress", table: "visits", source: .init(kind: "test", database: nil, schema: nil, table: "visits"),
            snapshotDate: "2026-11-26", extractedAt: "2026-11-26T00:00:00Z", runId: "p1", rowCount: 1,
            byteCount: Int64(data.count), sha256: SHA256.hash(data: data).lowercaseHex,
            columns: [Manifest.Column(name: "ID", type: "integer", nullable: false)], primaryKey: ["ID"])
        try connection.query("SELECT starpipe.register($1::jsonb, 'm/p1', 'd/p1')", [String(decoding: manifest.encoded(), as: UTF8.self)])
        let job = try #require(try ClaimedJob.claim(connection, workerID: "progress-test", leaseSeconds: 1))
        var logger = Logger(label: "starpipe.test")
        logger.logLevel = .critical
        let keeper = LeaseKeeper(job: job, options: WorkerOptions(databaseURL: url, leaseSeconds: 1), lock: nil, logger: logger)
        defer { keeper.stop() }
        /// The job's progress, its time and its lease end, as text.
        func ledger() throws -> [String?] {
            try connection.query("SELECT progress::text, progress_at::text, lease_until::text FROM starpipe.job WHERE job_id = $1",
                                 [String(job.id)]).rows.first ?? []
        }
        /// Waits (bounded) until `condition` holds of the ledger.
        func waitFor(_ condition: ([String?]) -> Bool) throws -> [String?] {
            let end = Date().addingTimeInterval(30)
            var row = try ledger()
            while !condition(row) && Date() < end {
                Thread.sleep(forTimeInterval: 0.05)
                row = try ledger()
            }
            return row
        }
        keeper.start()
        // Renewals before any report carry no figure.
        let before = try ledger()
        let renewed = try waitFor { $0[2] != before[2] }
        #expect(renewed[2] != before[2] && renewed[0] == nil && renewed[1] == nil, "\(renewed)")
        keeper.report(progress: 4096)
        let moved = try waitFor { $0[0] == "4096" }
        #expect(moved[0] == "4096" && moved[1] != nil, "\(moved)")
        // The same figure again: the lease moves on, the progress time does not.
        let again = try waitFor { $0[2] != moved[2] }
        #expect(again[2] != moved[2] && again[1] == moved[1], "\(moved) then \(again)")
        keeper.report(progress: 8192)
        let further = try waitFor { $0[0] == "8192" }
        #expect(further[0] == "8192" && further[1] != moved[1], "\(moved) then \(further)")
    }
}
