import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipeExtract
import Testing

/// MySQL/MariaDB as a source, against the private MariaDB server: the type matrix (docs/TYPES.md, "MySQL and
/// MariaDB"), values no Postgres type holds, and paging with and without a usable primary key.
@Suite("MariaDB source")
struct MariaDBSourceTests {
    static let matrixSQL = #"""
        CREATE TABLE kinds (
            id INT PRIMARY KEY, ti TINYINT, tb TINYINT(1), tu TINYINT UNSIGNED, su SMALLINT UNSIGNED, mi MEDIUMINT,
            iu INT UNSIGNED, bu BIGINT UNSIGNED, bs BIGINT, zf INT(5) ZEROFILL, dec_ DECIMAL(30,10), f FLOAT, dbl DOUBLE,
            bits BIT(5), e ENUM('sad', 'ok', 'it''s'), s SET('a', 'b', 'c'), j JSON, bl BLOB, vb VARBINARY(8), d DATE,
            dt DATETIME(6), dt0 DATETIME, ts TIMESTAMP(3) NULL DEFAULT NULL, tm TIME(2), y YEAR,
            vc VARCHAR(40) CHARACTER SET utf8mb4, l1 VARCHAR(20) CHARACTER SET latin1, tx TEXT, ch CHAR(5)
        ) ENGINE=InnoDB;
        INSERT INTO kinds VALUES
          (1, -128, 1, 255, 65535, -8388608, 4294967295, 18446744073709551615, -9223372036854775808, 42,
           12345678901234567890.0123456789, 0.1, 0.30000000000000004, b'10101', 'it''s', 'a,c', '{"a": [1, null], "b": "x"}',
           X'00FF00', X'', '2024-02-29', '2024-02-29 12:34:56.123456', '0000-00-00 00:00:00', '2038-01-19 03:14:07.999',
           '-838:59:59.00', 1901, 'é 日本 🎉 "q" \\ tab\t', 'café ÿ', 'long\ntext', 'ab'),
          (2, 127, 0, 0, 0, 8388607, 0, 0, 9223372036854775807, 0, -0.5, 3.40282e38, 1.7976931348623157e308, b'00000',
           'sad', '', '"just a string"', X'5C22', X'0000', '0000-00-00', '1000-01-01 00:00:00', '9999-12-31 23:59:59',
           '1970-01-01 00:00:01', '838:59:59', 2155, '', '', '', '   '),
          (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
           NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
        """#

    static let rawTypes = [
        "id": "integer", "ti": "smallint", "tb": "smallint", "tu": "smallint", "su": "integer", "mi": "integer",
        "iu": "bigint", "bu": "numeric", "bs": "bigint", "zf": "bigint", "dec_": "numeric", "f": "real",
        "dbl": "double precision", "bits": "bit varying", "e": "text", "s": "text", "j": "json", "bl": "bytea",
        "vb": "bytea", "d": "date", "dt": "timestamp without time zone", "dt0": "timestamp without time zone",
        "ts": "timestamp with time zone", "tm": "interval", "y": "smallint", "vc": "character varying", "l1": "character varying",
        "tx": "text", "ch": "character varying",
    ]

    /// Raw's text of every value (Postgres output under the pipeline settings).
    static let expected: [[String: String?]] = [
        ["id": "1", "ti": "-128", "tb": "1", "tu": "255", "su": "65535", "mi": "-8388608", "iu": "4294967295",
         "bu": "18446744073709551615", "bs": "-9223372036854775808", "zf": "42", "dec_": "12345678901234567890.0123456789",
         "f": "0.1", "dbl": "0.30000000000000004", "bits": "10101", "e": "it's", "s": "a,c", "j": #"{"a": [1, null], "b": "x"}"#,
         "bl": "\\x00ff00", "vb": "\\x", "d": "2024-02-29", "dt": "2024-02-29 12:34:56.123456", "dt0": "-infinity",
         "ts": "2038-01-19 03:14:07.999+00", "tm": "-838:59:59", "y": "1901", "vc": "é 日本 🎉 \"q\" \\ tab\t",
         "l1": "café ÿ", "tx": "long\ntext", "ch": "ab"],
        ["id": "2", "ti": "127", "tb": "0", "tu": "0", "su": "0", "mi": "8388607", "iu": "0", "bu": "0",
         "bs": "9223372036854775807", "zf": "0", "dec_": "-0.5000000000", "f": "3.40282e+38", "dbl": "1.7976931348623157e+308",
         "bits": "00000", "e": "sad", "s": "", "j": "\"just a string\"", "bl": "\\x5c22", "vb": "\\x0000", "d": "-infinity",
         "dt": "1000-01-01 00:00:00", "dt0": "9999-12-31 23:59:59", "ts": "1970-01-01 00:00:01+00", "tm": "838:59:59",
         "y": "2155", "vc": "", "l1": "", "tx": "", "ch": ""],
        ["id": "3", "ti": nil, "tb": nil, "tu": nil, "su": nil, "mi": nil, "iu": nil, "bu": nil, "bs": nil, "zf": nil,
         "dec_": nil, "f": nil, "dbl": nil, "bits": nil, "e": nil, "s": nil, "j": nil, "bl": nil, "vb": nil, "d": nil, "dt": nil,
         "dt0": nil, "ts": nil, "tm": nil, "y": nil, "vc": nil, "l1": nil, "tx": nil, "ch": nil],
    ]

    @Test("every MariaDB type lands in raw with its value, by binary and by text COPY", arguments: [true, false])
    func typeMatrix(binaryCopy: Bool) throws {
        let database = try TestMariaDB.createDatabase("sp_matrix")
        try TestMariaDB.execute(database, Self.matrixSQL)
        let (manifests, pipeline) = try SourceLanding.land(TestMariaDB.url(database), client: "maria", binaryCopy: binaryCopy)
        let manifest = try #require(manifests.first)
        #expect(manifest.source.kind == "mariadb" && manifest.source.database == database && manifest.primaryKey == ["id"])
        let types = Dictionary(uniqueKeysWithValues: manifest.columns.map { ($0.name, $0) })
        #expect(types["tb"]?.sourceType == "tinyint(1)" && types["bu"]?.type == "numeric(20,0)")
        #expect(types["dt"]?.type == "timestamp(6) without time zone" && types["ts"]?.type == "timestamp(3) with time zone")
        #expect(types["dec_"]?.type == "numeric(30,10)" && types["bits"]?.type == "bit(5)" && types["j"]?.type == "json")
        // BLOBs and binary strings travel as base64, marked in the manifest; raw holds the same bytes.
        #expect(manifest.columns.filter { $0.encoding != nil }.map { "\($0.name) \($0.type) \($0.encoding!)" } == ["bl bytea base64", "vb bytea base64"])
        try SourceLanding.compare(pipeline, client: "maria", table: "kinds", types: Self.rawTypes, expected: Self.expected)
    }

    @Test("a date no Postgres date holds stops the table, naming table, row and column, not the value; spatial types are refused")
    func uncarriedValues() throws {
        let database = try TestMariaDB.createDatabase("sp_refuse")
        try TestMariaDB.execute(database, """
            CREATE TABLE visits (id INT PRIMARY KEY, seen DATE);
            INSERT INTO visits VALUES (1, '2024-01-01'), (2, NULL), (3, '2024-02-00');
            CREATE TABLE places (id INT PRIMARY KEY, at POINT);
            """)
        let bucket = LocalBucket(root: SourceLanding.temporaryDirectory())
        let error = #expect(throws: StarpipeError.self) {
            try Extractor(options: ExtractOptions(sourceURL: TestMariaDB.url(database), client: "maria", tables: ["visits"], runID: "m"),
                          bucket: bucket, logger: SourceLanding.logger).run()
        }
        let message = error.map { "\($0)" } ?? ""
        #expect(message.contains("visits row 3 column seen") && message.contains("zero"), "\(message)")
        #expect(!message.contains("2024"), "the value is never quoted")
        #expect(try bucket.list().allSatisfy { !$0.hasSuffix("manifest.json") }, "no manifest for the table")
        let spatial = #expect(throws: StarpipeError.self) {
            try Extractor(options: ExtractOptions(sourceURL: TestMariaDB.url(database), client: "maria", tables: ["places"], runID: "n"),
                          bucket: bucket, logger: SourceLanding.logger).run()
        }
        #expect(spatial.map { "\($0)" }?.contains("places column at has type point") == true)
    }

    @Test("keyless, string-key (latin1, case-insensitive) and composite-key tables are read completely in pages; the file does not depend on the page size")
    func paging() throws {
        let database = try TestMariaDB.createDatabase("sp_paging")
        try TestMariaDB.execute(database, """
            CREATE TABLE notes (body TEXT, n INT);
            INSERT INTO notes VALUES ('same', 1), ('same', 1), ('same', 1), ('b', 2), ('c', 3), (NULL, NULL), ('e', 5);
            CREATE TABLE names (code VARCHAR(10) CHARACTER SET latin1 COLLATE latin1_swedish_ci PRIMARY KEY, v INT);
            INSERT INTO names VALUES ('a', 1), ('B', 2), ('c', 3), ('Ä', 4), ('o''k', 5), ('z', 6), ('é', 7);
            CREATE TABLE pairs (a VARBINARY(4), b BIGINT UNSIGNED, v TEXT, PRIMARY KEY (a, b));
            INSERT INTO pairs VALUES (X'00', 18446744073709551615, '1'), (X'00', 1, '2'), (X'FF', 0, '3'), ('', 5, '4');
            """)
        var digests: [String: Set<String>] = [:]
        for pageSize in [1, 2, 3, 100] {
            let bucket = LocalBucket(root: SourceLanding.temporaryDirectory())
            let manifests = try Extractor(options: ExtractOptions(sourceURL: TestMariaDB.url(database), client: "maria",
                                                                  pageSize: pageSize, runID: "p\(pageSize)"),
                                          bucket: bucket, logger: SourceLanding.logger).run()
            #expect(manifests.map(\.table) == ["names", "notes", "pairs"])
            #expect(manifests.map(\.rowCount) == [7, 7, 4], "page size \(pageSize)")
            for manifest in manifests { digests[manifest.table, default: []].insert(manifest.sha256) }
        }
        #expect(digests.values.allSatisfy { $0.count == 1 }, "output does not depend on the page size")
    }
}
