import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipeExtract
import StarpipePostgres
import Testing

/// Writes committed while the extractor pages must not show up in its file: each run reads one snapshot. A writer
/// commits between pages (through the extractor's per-row hook, so the interleaving is certain, not timed): each of
/// its transactions moves the first row to the end (a pager without a snapshot would read it twice), deletes nothing
/// else, and moves one unit of balance between two accounts (a torn read would change the sum).
@Suite("Concurrent writer")
struct ConcurrentWriterTests {
    static let rows = 600
    static let createSQL = "CREATE TABLE accounts (id INTEGER PRIMARY KEY, account INTEGER NOT NULL, balance INTEGER NOT NULL)"
    /// One writer transaction, valid in Postgres, MariaDB and SQLite (BEGIN/COMMIT added by each).
    static let moveSQL = """
        INSERT INTO accounts SELECT (SELECT max(id) FROM accounts) + 1, account, balance FROM accounts
         WHERE id = (SELECT min(id) FROM accounts);
        DELETE FROM accounts WHERE id = (SELECT min(id) FROM accounts);
        UPDATE accounts SET balance = balance - 1 WHERE account = 7;
        UPDATE accounts SET balance = balance + 1 WHERE account = 400;
        """

    static func insertSQL() -> String {
        "INSERT INTO accounts VALUES " + (1...rows).map { "(\($0), \($0), 100)" }.joined(separator: ", ") + ";"
    }

    /// Runs the writer between rows `every` rows apart; its commits counted.
    final class Writer: @unchecked Sendable {
        private let write: () throws -> Void
        private let every: Int
        private var seen = 0
        private(set) var commits = 0
        private(set) var failure: (any Error)?
        init(every: Int, _ write: @escaping () throws -> Void) { self.every = every; self.write = write }

        func row() -> Bool {
            seen += 1
            guard seen % every == 0 else { return false }
            do { try write(); commits += 1 } catch { failure = error }
            return false
        }
    }

    /// Extracts `url` with tiny pages while `writer` commits; checks the file holds exactly one snapshot's rows.
    static func check(_ url: String, writer: Writer) throws {
        let bucket = LocalBucket(root: SourceLanding.temporaryDirectory())
        var extractor = Extractor(options: ExtractOptions(sourceURL: url, client: "writer", tables: ["accounts"], pageSize: 7, runID: "w"),
                                  bucket: bucket, logger: SourceLanding.logger)
        extractor.isCancelled = { writer.row() }
        let manifest = try #require(try extractor.run().first)
        #expect(writer.failure == nil, "\(String(describing: writer.failure))")
        #expect(writer.commits >= rows / 50 - 1, "the writer committed while the extractor paged")
        let key = ManifestKey.structuredDirectory(client: "writer", table: "accounts", date: SnapshotDate(iso: manifest.snapshotDate)!, runID: "w")
        let data = try bucket.read(key + ManifestKey.dataFileName)
        let objects = try #require(try JSONSerialization.jsonObject(with: Data(data)) as? [[String: Any]])
        let ids = objects.compactMap { $0["id"] as? Int }, accounts = objects.compactMap { $0["account"] as? Int }
        #expect(manifest.rowCount == Int64(rows) && objects.count == rows, "no row read twice or skipped")
        #expect(Set(ids).count == rows && Set(accounts) == Set(1...rows))
        #expect(objects.compactMap { $0["balance"] as? Int }.reduce(0, +) == rows * 100)
        #expect(ids == ids.sorted(), "key order")
    }

    @Test("Postgres: the file is one snapshot while a writer inserts, updates and deletes between pages")
    func postgres() throws {
        let url = try TestServer.createDatabase("sp_writer")
        let writerConnection = try PostgresConnection(url: url)
        try writerConnection.execute(Self.createSQL + ";" + Self.insertSQL())
        try Self.check(url, writer: Writer(every: 50) { try writerConnection.execute("BEGIN;" + Self.moveSQL + "COMMIT;") })
        #expect(try writerConnection.query("SELECT min(id) > 1 FROM accounts").scalar == "t", "the writes happened")
    }

    @Test("MariaDB: the file is one snapshot while a writer inserts, updates and deletes between pages")
    func mariaDB() throws {
        let database = try TestMariaDB.createDatabase("sp_writer")
        try TestMariaDB.execute(database, Self.createSQL + " ENGINE=InnoDB;" + Self.insertSQL())
        try Self.check(TestMariaDB.url(database), writer: Writer(every: 50) {
            try TestMariaDB.execute(database, "START TRANSACTION;" + Self.moveSQL + "COMMIT;")
        })
    }

    @Test("SQLite (WAL): the file is one snapshot while a writer inserts, updates and deletes between pages")
    func sqlite() throws {
        let path = try TestSQLite.createFile("PRAGMA journal_mode = WAL;" + Self.createSQL + ";" + Self.insertSQL())
        try Self.check("sqlite:\(path)", writer: Writer(every: 50) {
            try TestServer.run("sqlite3", ["-bail", path, ".timeout 10000", "BEGIN IMMEDIATE;" + Self.moveSQL + "COMMIT;"])
        })
        let after = Pipe()
        let query = Process()
        query.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        query.arguments = ["sqlite3", path, "SELECT min(id) > 1 FROM accounts"]
        query.standardOutput = after
        try query.run()
        query.waitUntilExit()
        #expect(String(decoding: after.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).hasPrefix("1"), "the writes happened")
    }
}
