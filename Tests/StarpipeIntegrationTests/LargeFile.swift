import Crypto
import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipePostgres

/// A pipeline database with the extension and no mapping (jobs end in raw), and a bucket holding
/// one generated data file big enough that a worker is still streaming it when a test interferes.
struct LargeFile {
    let pipelineURL: String
    let bucketDirectory: String
    let rows: Int
    let clients: [String]

    /// One file of `rows` rows for each client (one client unless told otherwise).
    init(rows: Int = 400_000, clients: [String] = ["bigco"]) throws {
        self.rows = rows
        self.clients = clients
        pipelineURL = try TestServer.createDatabase("sp_large")
        try PostgresConnection(url: pipelineURL).execute("CREATE EXTENSION starpipe")
        bucketDirectory = FileManager.default.temporaryDirectory
            .appendingPathComponent("starpipe-large-\(UInt32.random(in: 0...UInt32.max))").path
        for client in clients {
            try Self.write(rows: rows, client: client, bucket: LocalBucket(root: bucketDirectory))
        }
    }

    private static func write(rows: Int, client: String, bucket: LocalBucket) throws {
        let directory = ManifestKey.structuredDirectory(client: client, table: "events", date: SnapshotDate(iso: "2026-11-26")!, runID: "r1")
        var hasher = SHA256()
        var bytes: Int64 = 0
        try bucket.put(directory + "data.json") { writer in
            var chunk: [UInt8] = []
            chunk.reserveCapacity(1 << 20)
            func flush() throws {
                hasher.update(data: chunk)
                bytes += Int64(chunk.count)
                try writer.write(chunk)
                chunk.removeAll(keepingCapacity: true)
            }
            chunk.append(contentsOf: Array("[".utf8))
            for row in 1...rows {
                let line = "\(row == 1 ? "\n" : ",\n"){\"id\":\(row),\"label\":\"event \(row) \\\"quoted\\\" ünïcode\",\"at\":\"2026-11-26T10:00:00Z\",\"ok\":\(row % 2 == 0)}"
                chunk.append(contentsOf: Array(line.utf8))
                if chunk.count >= 1 << 20 { try flush() }
            }
            chunk.append(contentsOf: Array("\n]\n".utf8))
            try flush()
        }
        let manifest = Manifest(
            client: client, table: "events", source: .init(kind: "postgres", database: "test", schema: "public", table: "events"),
            snapshotDate: "2026-11-26", extractedAt: "2026-11-26T10:00:00Z", runId: "r1", rowCount: Int64(rows), byteCount: bytes,
            sha256: hasher.finalize().lowercaseHex,
            columns: [.init(name: "id", type: "bigint", nullable: false), .init(name: "label", type: "text", nullable: true),
                      .init(name: "at", type: "timestamp with time zone", nullable: true), .init(name: "ok", type: "boolean", nullable: true)],
            primaryKey: ["id"])
        try bucket.put(directory + "manifest.json") { writer in try writer.write(Array(manifest.encoded())) }
    }

    func connection() throws -> PostgresConnection { try PostgresConnection(url: pipelineURL) }

    /// The first client's job as (status, stage, rows_raw); nil before registration.
    func job() throws -> (status: String, stage: String, rowsRaw: Int?)? {
        try job(of: clients[0])
    }

    /// A client's job as (status, stage, rows_raw); nil before registration.
    func job(of client: String) throws -> (status: String, stage: String, rowsRaw: Int?)? {
        guard let row = try connection().query("SELECT status, stage, rows_raw FROM starpipe.job WHERE client = $1", [client]).rows.first else {
            return nil
        }
        return (row[0]!, row[1]!, row[2].flatMap { Int($0) })
    }

    /// Rows in a client's raw table (0 when it does not exist yet); the first client by default.
    func rawRows(of client: String? = nil) throws -> Int {
        let connection = try connection()
        let table = "raw_\(client ?? clients[0]).events"
        guard try connection.query("SELECT to_regclass($1)::text", [table]).scalar != nil else { return 0 }
        return Int(try connection.query("SELECT count(*) FROM \(table)").scalar!)!
    }

    /// Polls until `condition` holds or `timeout` seconds pass.
    func wait(timeout: Double, _ condition: () throws -> Bool) throws -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }
}
