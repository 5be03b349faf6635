import Foundation
import Logging
import StarpipeBucket
import StarpipeExtract
import StarpipePostgres
import Testing

/// The Postgres source encodes JSON on the extractor's core from `COPY … TO STDOUT`; its files must be the bytes the
/// server's own `row_to_json` gives, so that a file's sha256 does not change with where it was encoded (an unchanged
/// table stays a DUPLICATE across the change) and every type keeps the JSON form the worker reads.
@Suite("Postgres encoding")
struct PostgresEncodingTests {
    /// Text and keys that exercise both escapings: every control character, quotes, backslashes, tabs and newlines
    /// (also in the primary key, which the next page's statement carries as a literal), non-ASCII, and a keyless table.
    static let edgeSQL = """
        CREATE TABLE controls (k text PRIMARY KEY, v text, n numeric, b boolean, t timestamp, tz timestamptz);
        INSERT INTO controls
        SELECT 'key ' || lpad(g::text, 3, '0') || CASE g % 4 WHEN 0 THEN E'\\'' WHEN 1 THEN E'\\\\' WHEN 2 THEN E'\\t' ELSE E'\\n' END,
               pg_catalog.chr(g) || E'"\\\\/\\b\\f\\n\\r\\t' || pg_catalog.chr(127) || 'é€𝄞',
               CASE WHEN g % 3 = 0 THEN 'NaN' ELSE g / 7.0 END, g % 2 = 0,
               '9999-12-31 23:59:59'::timestamp + g * interval '1 day 1 second',
               '0044-03-15 12:00:00.5+00 BC'::timestamptz + g * interval '1 hour'
          FROM generate_series(1, 31) g;
        CREATE TABLE loose (a text, b integer);
        INSERT INTO loose SELECT E'row\\t' || g, g FROM generate_series(1, 9) g;
        INSERT INTO loose VALUES (NULL, NULL), (E'\\\\N', 0);
        """

    @Test("every table of the type matrix and the escaping edge cases is written byte for byte as row_to_json writes it, with any page size",
          arguments: [10_000, 3])
    func sameBytesAsRowToJSON(pageSize: Int) throws {
        let sourceURL = try TestServer.createDatabase("sp_encoding")
        let source = try PostgresConnection(url: sourceURL)
        try source.execute(TypeMatrix.sourceSQL)
        try source.execute(Self.edgeSQL)
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-encoding-\(UInt32.random(in: 0...UInt32.max))").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        var logger = Logger(label: "starpipe.test")
        logger.logLevel = .error
        let bucket = LocalBucket(root: root)
        let manifests = try Extractor(options: ExtractOptions(sourceURL: sourceURL, client: "enc", pageSize: pageSize, runID: "e"),
                                      bucket: bucket, logger: logger).run()
        #expect(manifests.count == TypeMatrix.rawTypes.count + 2)
        try source.execute("""
            BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;
            SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'iso_8601';
            SET LOCAL extra_float_digits = 3; SET LOCAL bytea_output = 'hex'; SET LOCAL lc_monetary = 'C';
            """)
        defer { try? source.execute("ROLLBACK") }
        for manifest in manifests {
            let expected = try Self.rowToJSONFile(source, table: manifest.source.table, primaryKey: manifest.primaryKey)
            let written = try bucket.read("client=enc/table=\(manifest.table)/date=\(manifest.snapshotDate.replacingOccurrences(of: "-", with: ""))/run_id=e/data.json")
            #expect(written.count == expected.count, "\(manifest.table): \(written.count) bytes, row_to_json \(expected.count)")
            if written != expected {
                let at = zip(written, expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(written.count, expected.count)
                // Matrix and edge values are made up, so the failure may show them.
                Issue.record("\(manifest.table) differs from byte \(at): \(String(decoding: written.dropFirst(max(0, at - 60)).prefix(140), as: UTF8.self)) vs \(String(decoding: expected.dropFirst(max(0, at - 60)).prefix(140), as: UTF8.self))")
            }
        }
    }

    /// The data file the server's `row_to_json` makes of `table`: built-in scalar types as row_to_json writes them, json,
    /// arrays, enums and other types as their output text, composites through their text (the extractor's documented
    /// forms before it encoded JSON itself), in key order (or `(tableoid, ctid)` order).
    static func rowToJSONFile(_ connection: PostgresConnection, table: String, primaryKey: [String]) throws -> Data {
        let relation = "public." + PostgresConnection.quoteIdentifier(table)
        // A domain is looked through to its base type, as row_to_json does.
        let columns = try connection.query("""
            SELECT a.attname,
                   CASE WHEN t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype IN ('b', 'r', 'm')
                             AND t.typcategory <> 'A' AND t.typname NOT IN ('json', 'jsonb') THEN 'native'
                        WHEN t.typtype = 'c' THEN 'composite' ELSE 'text' END
              FROM pg_attribute a
              CROSS JOIN LATERAL (
                  WITH RECURSIVE chain(oid) AS (
                      SELECT a.atttypid
                      UNION ALL
                      SELECT d.typbasetype FROM chain JOIN pg_type d ON d.oid = chain.oid WHERE d.typtype = 'd')
                  SELECT b.* FROM chain JOIN pg_type b ON b.oid = chain.oid WHERE b.typtype <> 'd') AS t
             WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """, [relation]).rows
        let values = columns.map { row -> String in
            let name = "r." + PostgresConnection.quoteIdentifier(row[0]!)
            switch row[1]! {
            case "native": return "\(name) AS \(PostgresConnection.quoteIdentifier(row[0]!))"
            case "composite": return "\(name)::text AS \(PostgresConnection.quoteIdentifier(row[0]!))"
            default: return "CASE WHEN \(name) IS NULL THEN NULL ELSE format('%s', \(name)) END AS \(PostgresConnection.quoteIdentifier(row[0]!))"
            }
        }
        let order = primaryKey.isEmpty ? "r.tableoid, r.ctid" : primaryKey.map { "r." + PostgresConnection.quoteIdentifier($0) }.joined(separator: ", ")
        let rows = try connection.query("""
            SELECT row_to_json(_expected)::text FROM \(relation) AS r CROSS JOIN LATERAL (SELECT \(values.joined(separator: ", "))) AS _expected ORDER BY \(order)
            """).rows.map { $0[0]! }
        return Data((rows.isEmpty ? "[]\n" : "[\n" + rows.joined(separator: ",\n") + "\n]\n").utf8)
    }
}
