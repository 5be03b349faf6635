import Foundation
import StarpipePostgres
import Testing

/// One dataset loaded into Postgres, MariaDB and SQLite, extracted from each and landed by the real worker: raw holds
/// the same logical rows from all three (each column read as its logical type, since a source's own types differ:
/// MariaDB's BOOLEAN is TINYINT(1), SQLite's DECIMAL is a double).
@Suite("Three sources")
struct ThreeSourcesTests {
    /// A patient row as each dialect writes it.
    struct Patient {
        var id: Int, name: String, born: String?, weight: String, active: Bool?, visits: Int64, note: String?, photo: [UInt8], updated: String

        static func sample(_ count: Int) -> [Patient] {
            let names = ["Ana O'Neil", "Zoë Ünal", "李 小龙", "Émile \"Doc\" Roux", "tab\there", "🎉 Party", "plain"]
            return (1...count).map { index in
                let name = names[index % names.count] + " \(index)"
                let born: String? = index % 11 == 0 ? nil : String(format: "%04d-%02d-%02d", 1930 + index % 90, 1 + index % 12, 1 + index % 28)
                let weight = String(format: "%d.%02d", 40 + index % 80, (index * 7) % 100)
                let active: Bool? = index % 13 == 0 ? nil : index % 2 == 0
                let note: String? = index % 5 == 0 ? nil : "note \(index), with ''quotes'' and , commas"
                let photo: [UInt8] = (0..<(index % 6)).map { UInt8(truncatingIfNeeded: index * 31 + $0 * 17) }
                let updated = String(format: "2026-%02d-%02d %02d:%02d:%02d.%06d", 1 + index % 12, 1 + index % 28,
                                     index % 24, index % 60, (index * 7) % 60, (index * 12345) % 1_000_000)
                return Patient(id: index, name: name, born: born, weight: weight, active: active, visits: Int64(index) * 1_000_003,
                               note: note, photo: photo, updated: updated)
            }
        }

        func values(quote: (String) -> String, boolean: (Bool) -> String, bytes: ([UInt8]) -> String) -> String {
            let fields = [String(id), quote(name), born.map(quote) ?? "NULL", weight, active.map(boolean) ?? "NULL",
                          String(visits), note.map(quote) ?? "NULL", bytes(photo), quote(updated)]
            return "(" + fields.joined(separator: ", ") + ")"
        }
    }

    @Test("Postgres, MariaDB and SQLite extractions of one dataset land as the same logical rows")
    func sameRows() throws {
        let patients = Patient.sample(250)
        let quote: (String) -> String = { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }
        let hex: ([UInt8]) -> String = { "X'" + $0.map { String(format: "%02x", $0) }.joined() + "'" }
        func inserts(boolean: @escaping (Bool) -> String, bytes: @escaping ([UInt8]) -> String) -> String {
            "INSERT INTO patients VALUES " + patients.map { $0.values(quote: quote, boolean: boolean, bytes: bytes) }.joined(separator: ",\n") + ";"
        }

        let postgresURL = try TestServer.createDatabase("sp_three")
        try PostgresConnection(url: postgresURL).execute("""
            CREATE TABLE patients (id integer PRIMARY KEY, name text NOT NULL, born date, weight numeric(6,2) NOT NULL,
                                   active boolean, visits bigint NOT NULL, note text, photo bytea NOT NULL, updated timestamp(6) NOT NULL);
            \(inserts(boolean: { $0 ? "true" : "false" }, bytes: { "'\\x" + $0.map { String(format: "%02x", $0) }.joined() + "'::bytea" }))
            """)
        let mariaDB = try TestMariaDB.createDatabase("sp_three")
        try TestMariaDB.execute(mariaDB, """
            CREATE TABLE patients (id INT PRIMARY KEY, name VARCHAR(100) NOT NULL, born DATE, weight DECIMAL(6,2) NOT NULL,
                                   active BOOLEAN, visits BIGINT NOT NULL, note TEXT, photo BLOB NOT NULL, updated DATETIME(6) NOT NULL);
            \(inserts(boolean: { $0 ? "TRUE" : "FALSE" }, bytes: hex).replacingOccurrences(of: "\\", with: "\\\\"))
            """)
        let sqlite = try TestSQLite.createFile("""
            CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT NOT NULL, born DATE, weight DECIMAL(6,2) NOT NULL,
                                   active BOOLEAN, visits INTEGER NOT NULL, note TEXT, photo BLOB NOT NULL, updated DATETIME NOT NULL);
            \(inserts(boolean: { $0 ? "1" : "0" }, bytes: hex))
            """)

        let pipelineURL = try TestServer.createDatabase("sp_three_pipeline")
        try PostgresConnection(url: pipelineURL).execute("CREATE EXTENSION starpipe")
        let sources = [("three_pg", postgresURL, 1000), ("three_my", TestMariaDB.url(mariaDB), 64), ("three_lite", "sqlite://\(sqlite)", 37)]
        var pipeline: PostgresConnection?
        for (client, url, pageSize) in sources {
            let landed = try SourceLanding.land(url, client: client, pageSize: pageSize, pipelineURL: pipelineURL)
            #expect(landed.manifests.map(\.rowCount) == [Int64(patients.count)], "\(client)")
            // Postgres bytea travels as its own hex text; MariaDB and SQLite blobs as base64, marked in the manifest.
            let photo = landed.manifests.first?.columns.first { $0.name == "photo" }
            #expect(photo?.type == "bytea" && photo?.encoding == (client == "three_pg" ? nil : "base64"), "\(client): \(String(describing: photo))")
            pipeline = landed.pipeline
        }
        let connection = try #require(pipeline)
        // Each column as its logical type: booleans from boolean or 0/1, decimals as numeric (12.5 = 12.50).
        func logical(_ client: String) -> String {
            """
            SELECT id::bigint, name::text, born::date, weight::numeric, active::text IN ('true', '1') AS active, visits::bigint,
                   note::text, photo::bytea, updated::timestamp FROM raw_\(client).patients
            """
        }
        for (client, _, _) in sources.dropFirst() {
            for (left, right) in [("three_pg", client), (client, "three_pg")] {
                let extra = try connection.query("SELECT count(*) FROM (\(logical(left)) EXCEPT ALL \(logical(right))) d").scalar
                #expect(extra == "0", "\(left) has \(extra ?? "?") rows that \(right) lacks")
            }
        }
        #expect(try connection.query("SELECT count(*) FROM raw_three_lite.patients").scalar == String(patients.count))
    }
}
