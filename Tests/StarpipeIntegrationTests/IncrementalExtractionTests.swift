import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipeExtract
import StarpipePostgres
import Testing

/// Incremental extraction from a real Postgres (issue 13): the keyset on (cursor, key) in one snapshot, the safe high
/// watermark, NULL cursors, and the state between runs.
@Suite("Incremental extraction")
struct IncrementalExtractionTests {
    static let items = "CREATE TABLE items (id int PRIMARY KEY, val text, updated_at timestamptz, created_at timestamptz)"

    @Test("rows sharing the boundary timestamp, across pages and across two runs, are none of them lost")
    func boundaryTie() throws {
        let source = try IncrementalSource("""
            \(Self.items);
            INSERT INTO items SELECT g, 'v' || g, '2026-01-01 00:00:00+00', NULL FROM generate_series(1, 5) g;
            """, cursors: ["items": TableCursor(columns: ["updated_at"])])
        let first = try #require(try source.run().first)
        #expect(first.mode == .incremental)
        #expect(try source.ids(first) == [1, 2, 3, 4, 5], "five tied rows over pages of 2")
        let incremental = try #require(first.incremental)
        #expect(incremental.lowWatermark == nil && incremental.cursor == ["updated_at"] && incremental.nullCursor == "fail")
        let high = incremental.highWatermark
        // Rows written at exactly the watermark, after the run: the next run starts at it, inclusive.
        try source.connection.execute("""
            INSERT INTO items SELECT g, 'tie', '\(high)', NULL FROM generate_series(6, 9) g;
            UPDATE items SET val = 'changed', updated_at = '\(high)' WHERE id = 1;
            """)
        let second = try #require(try source.run().first)
        #expect(second.incremental?.lowWatermark == high, "lookback 0: the low watermark is the last high one")
        #expect(try source.ids(second) == [1, 6, 7, 8, 9])
        #expect(try source.rows(second).first?["val"] as? String == "changed")
        let third = try #require(try source.run().first)
        #expect(third.rowCount == 0, "nothing changed since the second run's safe point")
        #expect(third.incremental?.lowWatermark == second.incremental?.highWatermark)
    }

    @Test("a transaction that began before the run and commits after it is read by the next run")
    func lateCommit() throws {
        let source = try IncrementalSource("""
            \(Self.items);
            INSERT INTO items SELECT g, 'v' || g, now() - interval '1 hour', NULL FROM generate_series(1, 4) g;
            """, cursors: ["items": TableCursor(columns: ["updated_at"])])
        try source.run()
        let late = try PostgresConnection(url: source.url)
        try late.execute("BEGIN; UPDATE items SET val = 'late', updated_at = now() WHERE id = 2")
        let started = try source.now(on: late)
        // A later, committed write: its cursor is past the open transaction's, so max(seen) would skip id 2 for good.
        try source.connection.execute("INSERT INTO items VALUES (5, 'v5', now(), NULL)")
        let during = try #require(try source.run().first)
        let rows = try source.rows(during)
        #expect(rows.map { ($0["id"] as! NSNumber).intValue } == [5])
        #expect(try #require(during.incremental?.highWatermark) <= started, "the safe point is at or below the open transaction's start")
        try late.execute("COMMIT")
        let after = try #require(try source.run().first)
        let caught = try source.rows(after).first { ($0["id"] as! NSNumber).intValue == 2 }
        #expect(caught?["val"] as? String == "late")
    }

    @Test("NULL cursors: fail stops the run with nothing written, include reads them every run, exclude never")
    func nullCursors() throws {
        let setup = """
            \(Self.items);
            CREATE TABLE aaa (id int PRIMARY KEY);
            INSERT INTO aaa VALUES (1);
            INSERT INTO items VALUES (1, 'both', now(), now()), (2, 'created only', NULL, now()), (3, 'neither', NULL, NULL);
            """
        let failing = try IncrementalSource(setup, cursors: ["items": TableCursor(columns: ["updated_at"], nullCursor: .fail)])
        #expect {
            try failing.run()
        } throws: { error in
            let message = "\(error)"
            return message.contains("items") && message.contains("2 row(s)") && message.contains("updated_at") && !message.contains("neither")
        }
        #expect(failing.manifestCount() == 0, "the table read before it (aaa) was not written either")

        let including = try IncrementalSource(setup, cursors: ["items": TableCursor(columns: ["updated_at"], nullCursor: .include)])
        let first = try #require(try including.run(tables: ["items"]).first)
        #expect(try including.ids(first) == [1, 2, 3], "the cursor's rows, then the NULL ones in key order")
        let second = try #require(try including.run(tables: ["items"]).first)
        #expect(try including.ids(second) == [2, 3])

        let excluding = try IncrementalSource(setup, cursors: ["items": TableCursor(columns: ["updated_at"], nullCursor: .exclude)])
        #expect(try excluding.ids(try #require(try excluding.run(tables: ["items"]).first)) == [1])

        let coalescing = try IncrementalSource(setup, cursors: ["items": TableCursor(columns: ["updated_at", "created_at"], nullCursor: .include)])
        let coalesced = try #require(try coalescing.run(tables: ["items"]).first)
        #expect(try coalescing.ids(coalesced) == [1, 2, 3])
        #expect(coalesced.incremental?.cursor == ["updated_at", "created_at"])
        try coalescing.connection.execute("UPDATE items SET created_at = now() WHERE id = 3")
        #expect(try coalescing.ids(try #require(try coalescing.run(tables: ["items"]).first)) == [3])
    }

    @Test("rows an update moves across pages during the run are read once, as the snapshot saw them, then again by the next run")
    func updateDuringRun() throws {
        let source = try IncrementalSource("""
            \(Self.items);
            INSERT INTO items SELECT g, 'v' || g, '2026-01-01'::timestamptz + g * interval '1 second', NULL FROM generate_series(1, 6) g;
            """, cursors: ["items": TableCursor(columns: ["updated_at"])])
        try source.run()
        try source.connection.execute("UPDATE items SET updated_at = now(), val = 'w' || id")
        let writer = try PostgresConnection(url: source.url)
        final class Once: @unchecked Sendable {
            var calls = 0
            let body: () throws -> Void
            init(_ body: @escaping () throws -> Void) { self.body = body }
        }
        // After the first page of two rows: id 1 (read) moves after every row, id 5 (not read yet) too.
        let move = Once {
            try writer.execute("UPDATE items SET updated_at = now(), val = 'moved' WHERE id IN (1, 5)")
        }
        let during = try #require(try source.run(pageSize: 2) {
            // The hook runs once per row, before the row is written: call 3 is the second page's first row.
            move.calls += 1
            if move.calls == 3 { try? move.body() }
            return false
        }.first)
        #expect(move.calls == 6)
        #expect(try writer.query("SELECT count(*) FROM items WHERE val = 'moved'").scalar == "2", "the update committed mid-run")
        let rows = try source.rows(during)
        #expect(rows.map { ($0["id"] as! NSNumber).intValue } == [1, 2, 3, 4, 5, 6], "each row once, in the snapshot's order")
        #expect(!rows.contains { $0["val"] as? String == "moved" })
        let next = try #require(try source.run(pageSize: 2).first)
        #expect(try source.ids(next) == [1, 5])
        #expect(try source.rows(next).allSatisfy { $0["val"] as? String == "moved" })
    }

    @Test("state: only watermarks, kept per source table; a lost state file reads everything again; a held lock refuses")
    func state() throws {
        let source = try IncrementalSource("""
            \(Self.items);
            CREATE TABLE plain (id int PRIMARY KEY);
            CREATE TABLE keyless (id int, updated_at timestamptz);
            INSERT INTO items VALUES (1, 'secret value', now(), NULL);
            INSERT INTO plain VALUES (1);
            """, cursors: ["items": TableCursor(columns: ["updated_at"])])
        let manifests = try source.run(tables: ["items", "plain"])
        #expect(manifests.map(\.mode) == [.incremental, .full], "a table without a cursor is read in full")
        #expect(manifests[1].incremental == nil)
        let file = try source.stateFile()
        let tables = try #require(file["tables"] as? [String: [String: Any]])
        let key = try #require(tables.keys.first)
        #expect(tables.count == 1 && key.hasPrefix("postgres/") && key.hasSuffix("/public/items"))
        #expect(tables[key]?["high_watermark"] as? String == manifests[0].incremental?.highWatermark)
        let text = try String(contentsOfFile: source.state + "/client=inc.json", encoding: .utf8)
        #expect(!text.contains("secret value"))

        // The file lost: the next run reads every row again, as a first run does.
        try FileManager.default.removeItem(atPath: source.state + "/client=inc.json")
        let again = try #require(try source.run(tables: ["items"]).first)
        #expect(again.incremental?.lowWatermark == nil && again.rowCount == 1)

        // A changed cursor starts the table over too.
        source.cursors["items"] = TableCursor(columns: ["updated_at", "created_at"])
        #expect(try source.run(tables: ["items"]).first?.incremental?.lowWatermark == nil)

        // A full run (--full) reads everything and still advances the watermark.
        let full = try #require(try source.run(tables: ["items"], enabled: false).first)
        #expect(full.mode == .full && full.incremental == nil)
        let recorded = try #require((try source.stateFile()["tables"] as? [String: [String: Any]])?[key]?["high_watermark"] as? String)
        #expect(recorded > (again.incremental?.highWatermark ?? ""))

        // Another run holding the lock.
        let lock = open(source.state + "/client=inc.lock", O_RDWR)
        #expect(flock(lock, LOCK_EX | LOCK_NB) == 0)
        #expect { try source.run(tables: ["items"]) } throws: { "\($0)".contains("another extraction for client inc") }
        close(lock)

        // A cursor on a table without a primary key, a cursor column that does not exist, or one of another type.
        source.cursors = ["keyless": TableCursor(columns: ["updated_at"])]
        #expect { try source.run(tables: ["keyless"]) } throws: { "\($0)".contains("keyless has no primary key") }
        source.cursors = ["items": TableCursor(columns: ["changed_at"])]
        #expect { try source.run(tables: ["items"]) } throws: { "\($0)".contains("column changed_at") }
        source.cursors = ["items": TableCursor(columns: ["val"])]
        #expect { try source.run(tables: ["items"]) } throws: { "\($0)".contains("has type text") }
        source.cursors = ["nosuch": TableCursor(columns: ["updated_at"])]
        #expect { try source.run() } throws: { "\($0)".contains("incremental.tables.nosuch") }
        #expect(source.manifestCount() == 5)
    }

    @Test("a zone-less timestamp cursor is compared in the zone the application writes it in")
    func naiveTimestamp() throws {
        let source = try IncrementalSource("""
            CREATE TABLE items (id int PRIMARY KEY, updated_at timestamp);
            INSERT INTO items VALUES (1, (now() - interval '1 hour') AT TIME ZONE 'America/New_York');
            """, cursors: ["items": TableCursor(columns: ["updated_at"])])
        #expect { try source.run() } throws: { "\($0)".contains("time_zone") }
        source.cursors = ["items": TableCursor(columns: ["updated_at"], timeZone: "America/New_York")]
        #expect(try source.run().first?.rowCount == 1)
        // Written in New York time just now: after the watermark, though read as UTC it would be hours before it.
        try source.connection.execute("INSERT INTO items VALUES (2, now() AT TIME ZONE 'America/New_York')")
        #expect(try source.ids(try #require(try source.run().first)) == [2])
    }

    @Test("a role that cannot see other sessions' transaction starts gets no watermark, and is told the grant")
    func invisibleSessions() throws {
        let source = try IncrementalSource("\(Self.items); INSERT INTO items VALUES (1, 'a', now(), NULL)",
                                           cursors: ["items": TableCursor(columns: ["updated_at"])])
        let role = "sp_incr_reader_\(UInt32.random(in: 0...UInt32.max))"
        try source.connection.execute("CREATE ROLE \(role) LOGIN; GRANT SELECT ON items TO \(role)")
        defer { try? source.connection.execute("DROP OWNED BY \(role); DROP ROLE \(role)") }
        // Another role's open transaction, whose start the reader cannot see.
        let other = try PostgresConnection(url: source.url)
        try other.execute("BEGIN; SELECT 1")
        let reader = IncrementalSource(copying: source, url: source.url.replacingOccurrences(of: "://\(TestServer.user)@", with: "://\(role)@"))
        #expect { try reader.run() } throws: { "\($0)".contains("pg_read_all_stats") }
        #expect(reader.manifestCount() == 0)
        try source.connection.execute("GRANT pg_read_all_stats TO \(role)")
        #expect(try reader.run().first?.rowCount == 1)
        try other.execute("COMMIT")
    }

    @Test("a SQLite source refuses an incremental section before reading anything")
    func otherSources() throws {
        let path = try TestSQLite.createFile("CREATE TABLE items (id INTEGER PRIMARY KEY, updated_at TEXT)")
        var options = ExtractOptions(sourceURL: "sqlite:\(path)", client: "inc", runID: "s")
        options.incremental = IncrementalOptions(cursors: ["items": TableCursor(columns: ["updated_at"])],
                                                 stateDirectory: SourceLanding.temporaryDirectory())
        let bucket = SourceLanding.temporaryDirectory()
        #expect {
            try Extractor(options: options, bucket: LocalBucket(root: bucket), logger: SourceLanding.logger).run()
        } throws: { "\($0)".contains("not available for sqlite sources") }
    }
}
