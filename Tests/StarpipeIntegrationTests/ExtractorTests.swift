import Foundation
import Logging
import StarpipeBucket
import StarpipeExtract
import StarpipePostgres
import Testing

/// The extractor's paging against real source tables.
@Suite("Extractor")
struct ExtractorTests {
    @Test("a partitioned table without a primary key is read completely, even with tiny pages")
    func partitionedWithoutKey() throws {
        let source = try TestServer.createDatabase("sp_source")
        try PostgresConnection(url: source).execute("""
            CREATE TABLE visits (region text, note text) PARTITION BY LIST (region);
            CREATE TABLE visits_a PARTITION OF visits FOR VALUES IN ('a');
            CREATE TABLE visits_b PARTITION OF visits FOR VALUES IN ('b');
            INSERT INTO visits SELECT 'a', 'note ' || g FROM generate_series(1, 7) g;
            INSERT INTO visits SELECT 'b', 'note ' || g FROM generate_series(1, 7) g;
            """)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-extract-\(UInt32.random(in: 0...UInt32.max))").path
        var logger = Logger(label: "starpipe.test")
        logger.logLevel = .error
        // Rows at the same ctid in both partitions straddle page boundaries with pages of 3.
        let manifests = try Extractor(options: ExtractOptions(sourceURL: source, client: "acme", tables: ["visits"], pageSize: 3, runID: "p"),
                                      bucket: LocalBucket(root: directory), logger: logger).run()
        #expect(manifests.first?.rowCount == 14)
        let again = try Extractor(options: ExtractOptions(sourceURL: source, client: "acme", tables: ["visits"], pageSize: 5, runID: "q"),
                                  bucket: LocalBucket(root: directory), logger: logger).run()
        #expect(again.first?.sha256 == manifests.first?.sha256, "output does not depend on the page size")
    }

    @Test("extracted_at is the run's snapshot time, to the microsecond, the same for every table")
    func extractedAtIsTheSnapshot() throws {
        let source = try TestServer.createDatabase("sp_source")
        let connection = try PostgresConnection(url: source)
        try connection.execute("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)")
        let before = try connection.query("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").scalar!
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-extract-\(UInt32.random(in: 0...UInt32.max))").path
        var logger = Logger(label: "starpipe.test")
        logger.logLevel = .error
        let manifests = try Extractor(options: ExtractOptions(sourceURL: source, client: "acme", runID: "t"),
                                      bucket: LocalBucket(root: directory), logger: logger).run()
        let after = try connection.query("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").scalar!
        #expect(manifests.map(\.table) == ["a", "b"])
        #expect(Set(manifests.map(\.extractedAt)).count == 1)
        let stamp = try #require(manifests.first?.extractedAt)
        #expect(stamp.count == "2026-01-01T00:00:00.000000Z".count && stamp.hasSuffix("Z"))
        // Fixed-width UTC text compares in time order.
        #expect(before <= stamp && stamp <= after)
        for manifest in manifests { try manifest.check() }
    }
}
