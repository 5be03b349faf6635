import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipeExtract
import Testing

/// SQLite as a source: the type matrix for its declared types (docs/TYPES.md, "SQLite"), values that a declared
/// type cannot carry, and paging with and without a primary key.
@Suite("SQLite source")
struct SQLiteSourceTests {
    static let matrixSQL = #"""
        CREATE TABLE kinds (id INTEGER PRIMARY KEY, i INTEGER, big BIGINT, r REAL, d DOUBLE, t TEXT, vc VARCHAR(10),
                            ch CHAR(3), b BLOB, num NUMERIC, dec DECIMAL(10,2), flag BOOLEAN, day DATE, at DATETIME,
                            ts TIMESTAMP, anything);
        INSERT INTO kinds VALUES
          (1, -9223372036854775807 - 1, 9223372036854775807, 0.1, 1.7976931348623157e308,
           'tab' || char(9) || '"q" \ é 日本 🎉' || char(10) || 'new line', 'x', 'ab ', X'00ff00', 12345678901234, 12.5, 1,
           '2024-02-29', '2024-02-29 12:34:56.123456', '1970-01-01T00:00:00', 42),
          (2, 0, 0, 5e-324, 2.5, '', '', '', X'', 1e20, -99999999.99, 0, '0001-01-01', '9999-12-31 23:59:59',
           '2038-01-19 03:14:08.5', 7),
          (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
          (4, 1, 1, 9e999, -9e999, 'NULL', '\N', '"', X'5c22', 0.1, 0, NULL, NULL, NULL, NULL, 1);
        """#

    static let rawTypes = [
        "id": "bigint", "i": "bigint", "big": "bigint", "r": "double precision", "d": "double precision", "t": "text",
        "vc": "text", "ch": "text", "b": "bytea", "num": "numeric", "dec": "numeric", "flag": "boolean", "day": "date",
        "at": "timestamp without time zone", "ts": "timestamp without time zone", "anything": "bigint",
    ]

    /// Raw's text of every value (Postgres output under the pipeline settings).
    static let expected: [[String: String?]] = [
        ["id": "1", "i": "-9223372036854775808", "big": "9223372036854775807", "r": "0.1", "d": "1.7976931348623157e+308",
         "t": "tab\t\"q\" \\ é 日本 🎉\nnew line", "vc": "x", "ch": "ab ", "b": "\\x00ff00", "num": "12345678901234",
         "dec": "12.5", "flag": "true", "day": "2024-02-29", "at": "2024-02-29 12:34:56.123456", "ts": "1970-01-01 00:00:00",
         "anything": "42"],
        ["id": "2", "i": "0", "big": "0", "r": "5e-324", "d": "2.5", "t": "", "vc": "", "ch": "", "b": "\\x",
         "num": "100000000000000000000", "dec": "-99999999.99", "flag": "false", "day": "0001-01-01",
         "at": "9999-12-31 23:59:59", "ts": "2038-01-19 03:14:08.5", "anything": "7"],
        ["id": "3", "i": nil, "big": nil, "r": nil, "d": nil, "t": nil, "vc": nil, "ch": nil, "b": nil, "num": nil, "dec": nil,
         "flag": nil, "day": nil, "at": nil, "ts": nil, "anything": nil],
        ["id": "4", "i": "1", "big": "1", "r": "Infinity", "d": "-Infinity", "t": "NULL", "vc": "\\N", "ch": "\"",
         "b": "\\x5c22", "num": "0.1", "dec": "0", "flag": nil, "day": nil, "at": nil, "ts": nil, "anything": "1"],
    ]

    @Test("every declared type lands in raw with its value, by binary and by text COPY", arguments: [true, false])
    func typeMatrix(binaryCopy: Bool) throws {
        let path = try TestSQLite.createFile(Self.matrixSQL)
        let (manifests, pipeline) = try SourceLanding.land("sqlite://\(path)", client: "lite", binaryCopy: binaryCopy)
        let manifest = try #require(manifests.first)
        #expect(manifest.source.kind == "sqlite" && manifest.source.table == "kinds" && manifest.primaryKey == ["id"])
        #expect(manifest.columns.first { $0.name == "dec" }?.sourceType == "DECIMAL(10,2)")
        #expect(manifest.columns.filter { $0.encoding != nil }.map { "\($0.name) \($0.type) \($0.encoding!)" } == ["b bytea base64"])
        #expect(manifest.columns.first { $0.name == "id" }?.nullable == false)
        try SourceLanding.compare(pipeline, client: "lite", table: "kinds", types: Self.rawTypes, expected: Self.expected)
    }

    @Test("a value its declared type cannot carry stops the run before anything is written, naming table, row and column, not the value")
    func mismatchedValueIsRefused() throws {
        let path = try TestSQLite.createFile("""
            CREATE TABLE a_first (id INTEGER PRIMARY KEY); INSERT INTO a_first VALUES (1);
            CREATE TABLE visits (code TEXT PRIMARY KEY, n INTEGER);
            INSERT INTO visits VALUES ('a', 1), ('b', 2), ('c', 'secret-value'), ('d', 'other');
            """)
        let directory = SourceLanding.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let bucket = LocalBucket(root: directory)
        let error = #expect(throws: StarpipeError.self) {
            try Extractor(options: ExtractOptions(sourceURL: "sqlite:\(path)", client: "lite", runID: "m"),
                          bucket: bucket, logger: SourceLanding.logger).run()
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("visits") && message.contains("row 3") && message.contains("column n")
                && message.contains("INTEGER") && message.contains("text") && message.contains("2 such values"), "\(message)")
        #expect(!message.contains("secret"), "the value is never quoted")
        #expect(try bucket.list().isEmpty, "nothing is written, not even the tables before it")

        // An untyped column holding numbers and text has no one type either.
        let mixed = try TestSQLite.createFile("CREATE TABLE t (id INTEGER PRIMARY KEY, v); INSERT INTO t VALUES (1, 5), (2, 'x');")
        let mixedError = #expect(throws: StarpipeError.self) {
            try Extractor(options: ExtractOptions(sourceURL: "sqlite:\(mixed)", client: "lite", runID: "m"),
                          bucket: bucket, logger: SourceLanding.logger).run()
        }
        #expect(mixedError.map { "\($0)" }?.contains("column v has no declared type") == true)
        // A boolean that is not 0 or 1, and a date that names no day.
        for (declared, value) in [("BOOLEAN", "2"), ("DATE", "'2024-02-30'"), ("DATETIME", "'2024-02-29 12:00:00+01:00'")] {
            let file = try TestSQLite.createFile("CREATE TABLE t (id INTEGER PRIMARY KEY, v \(declared)); INSERT INTO t VALUES (1, NULL), (2, \(value));")
            let refused = #expect(throws: StarpipeError.self) {
                try Extractor(options: ExtractOptions(sourceURL: "sqlite:\(file)", client: "lite", runID: "m"),
                              bucket: bucket, logger: SourceLanding.logger).run()
            }
            #expect(refused.map { "\($0)" }?.contains("row 2 column v (declared \(declared))") == true, "\(declared): \(String(describing: refused))")
        }
        #expect(try bucket.list().isEmpty)
    }

    @Test("keyless and composite-key tables are read completely in pages, and the file does not depend on the page size")
    func paging() throws {
        let path = try TestSQLite.createFile("""
            CREATE TABLE notes (body TEXT, n INTEGER);
            INSERT INTO notes VALUES ('same', 1), ('same', 1), ('same', 1), ('b', 2), ('c', 3), (NULL, NULL), ('e', 5);
            DELETE FROM notes WHERE n = 2;
            CREATE TABLE pairs (a TEXT, b INTEGER, v TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID;
            INSERT INTO pairs VALUES ('x', 2, '1'), ('x', 1, '2'), ('X', 1, '3'), ('y', -1, '4'), ('é', 0, '5'), ('', 9, '6');
            """)
        var digests: [String: Set<String>] = [:]
        for pageSize in [1, 2, 3, 100] {
            let bucket = LocalBucket(root: SourceLanding.temporaryDirectory())
            let manifests = try Extractor(options: ExtractOptions(sourceURL: "sqlite:\(path)", client: "lite", pageSize: pageSize, runID: "p\(pageSize)"),
                                          bucket: bucket, logger: SourceLanding.logger).run()
            #expect(manifests.map(\.table) == ["notes", "pairs"])
            #expect(manifests.map(\.rowCount) == [6, 6], "page size \(pageSize)")
            #expect(manifests[1].primaryKey == ["a", "b"] && manifests[0].primaryKey.isEmpty)
            for manifest in manifests { digests[manifest.table, default: []].insert(manifest.sha256) }
        }
        #expect(digests.values.allSatisfy { $0.count == 1 }, "output does not depend on the page size")
    }
}
