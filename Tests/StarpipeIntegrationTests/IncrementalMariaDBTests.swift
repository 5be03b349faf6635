import Foundation
import StarpipeExtract
import Testing

/// Incremental extraction from a real MariaDB: the same keyset, watermark and NULL rules as Postgres, the safe point
/// from information_schema.INNODB_TRX.
@Suite("Incremental extraction from MariaDB")
struct IncrementalMariaDBTests {
    /// A `mariadb` client session kept open, fed statements on its standard input.
    final class Session {
        let process = Process()
        let input = Pipe()
        let output = Pipe()

        init(_ database: String) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = ["mariadb", "--no-defaults", "-h", TestMariaDB.host, "-P", TestMariaDB.port, "-u", "root",
                                 "--batch", "--unbuffered", "--skip-column-names", "--init-command=SET SESSION time_zone = '+00:00'", database]
            process.standardInput = input
            process.standardOutput = output
            process.standardError = output
            try process.run()
        }

        /// Runs `sql`, then waits for the session to print a marker after it, so the statements have run.
        func run(_ sql: String) throws {
            let marker = "done-\(UInt32.random(in: 0...UInt32.max))"
            input.fileHandleForWriting.write(Data("\(sql); SELECT '\(marker)';\n".utf8))
            var seen = ""
            while !seen.contains(marker) {
                let chunk = output.fileHandleForReading.availableData
                guard !chunk.isEmpty else { throw TestFailure("the mariadb session ended: \(seen)") }
                seen += String(decoding: chunk, as: UTF8.self)
            }
        }

        func close() {
            try? input.fileHandleForWriting.close()
            process.waitUntilExit()
        }
    }

    @Test("ties across pages and runs, NULL cursors included, a coalesce, and a late commit from an open transaction")
    func incremental() throws {
        let database = try TestMariaDB.createDatabase("sp_incr")
        try TestMariaDB.execute(database, """
            CREATE TABLE items (id INT PRIMARY KEY, val VARCHAR(20), updated_at TIMESTAMP(6) NULL DEFAULT NULL, created_at TIMESTAMP(6) NULL DEFAULT NULL);
            INSERT INTO items VALUES (1, 'a', '2026-01-01 00:00:00', NULL), (2, 'b', '2026-01-01 00:00:00', NULL),
                                     (3, 'c', '2026-01-01 00:00:00', NULL), (4, 'd', NULL, '2026-01-01 00:00:00'), (5, 'e', NULL, NULL);
            """)
        let source = IncrementalSource(url: TestMariaDB.url(database),
                                       cursors: ["items": TableCursor(columns: ["updated_at"], nullCursor: .fail)])
        #expect { try source.run() } throws: { "\($0)".contains("2 row(s)") }
        source.cursors = ["items": TableCursor(columns: ["updated_at", "created_at"], nullCursor: .include)]
        let first = try #require(try source.run().first)
        #expect(first.mode == .incremental && first.source.kind == "mariadb")
        #expect(try source.ids(first) == [1, 2, 3, 4, 5], "three tied rows over pages of 2, the coalesced one, then the NULL one")
        let high = try #require(first.incremental?.highWatermark)
        let tie = high.replacingOccurrences(of: "T", with: " ").replacingOccurrences(of: "Z", with: "")
        try TestMariaDB.execute(database, "INSERT INTO items VALUES (6, 'tie', '\(tie)', NULL), (7, 'tie', '\(tie)', NULL)")
        let late = try Session(database)
        defer { late.close() }
        try late.run("BEGIN; UPDATE items SET val = 'late', updated_at = UTC_TIMESTAMP(6) WHERE id = 2")
        try TestMariaDB.execute(database, "INSERT INTO items VALUES (8, 'after', UTC_TIMESTAMP(6), NULL)")
        let second = try #require(try source.run().first)
        #expect(second.incremental?.lowWatermark == high)
        #expect(try source.ids(second) == [6, 7, 8, 5], "the tied rows, the later one, and the NULL one again")
        try late.run("COMMIT")
        let third = try #require(try source.run().first)
        let rows = try source.rows(third)
        #expect(rows.contains { ($0["id"] as! NSNumber).intValue == 2 && $0["val"] as? String == "late" },
                "the update committed after the second run, with an older timestamp, is read by the third")
    }

    @Test("a user without the PROCESS privilege gets no watermark, and is told the grant; a DATETIME cursor needs its zone")
    func privilegeAndZone() throws {
        let database = try TestMariaDB.createDatabase("sp_incr_priv")
        let user = "sp_reader_\(UInt32.random(in: 0...UInt32.max))"
        try TestMariaDB.execute(database, """
            CREATE TABLE items (id INT PRIMARY KEY, changed DATETIME(6));
            INSERT INTO items VALUES (1, '2026-01-01 00:00:00');
            CREATE USER '\(user)'@'%'; GRANT SELECT ON \(database).* TO '\(user)'@'%';
            """)
        defer { try? TestMariaDB.execute(nil, "DROP USER '\(user)'@'%'") }
        let reader = IncrementalSource(url: "mysql://\(user)@\(TestMariaDB.host):\(TestMariaDB.port)/\(database)",
                                       cursors: ["items": TableCursor(columns: ["changed"], timeZone: "America/New_York")])
        #expect { try reader.run() } throws: { "\($0)".contains("GRANT PROCESS") }
        #expect(reader.manifestCount() == 0)
        try TestMariaDB.execute(nil, "GRANT PROCESS ON *.* TO '\(user)'@'%'")
        #expect(try reader.run().first?.rowCount == 1)
        // Written in New York time just now: after the watermark, though read as UTC it would be hours before it.
        try TestMariaDB.execute(database, "INSERT INTO items VALUES (2, CONVERT_TZ(UTC_TIMESTAMP(6), '+00:00', '-05:00'))")
        #expect(try reader.ids(try #require(try reader.run().first)) == [2])
        reader.cursors = ["items": TableCursor(columns: ["changed"])]
        #expect { try reader.run() } throws: { "\($0)".contains("time_zone") }
    }
}
