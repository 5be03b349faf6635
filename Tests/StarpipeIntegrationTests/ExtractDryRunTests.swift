import Foundation
import Testing

/// `starpipe extract --dry-run`: what a run would extract, and what it would refuse, with nothing written.
@Suite("Extract dry run")
struct ExtractDryRunTests {
    @Test("--dry-run lists every table and column with its manifest type, names the table it cannot carry, writes nothing and exits 1")
    func dryRun() throws {
        let path = try TestSQLite.createFile("""
            CREATE TABLE patients (id INTEGER PRIMARY KEY, name TEXT NOT NULL, born DATE, weight DECIMAL(6,2));
            INSERT INTO patients VALUES (1, 'a', '2000-01-01', 70.5);
            CREATE TABLE visits (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO visits VALUES (1, 'not a number');
            """)
        let bucket = SourceLanding.temporaryDirectory()
        let (status, output) = try ExtractCommand.run(["--dry-run", "--client", "dry", "--bucket", "file://\(bucket)",
                                                       "--source", "sqlite://\(path)"])
        #expect(status == 1, "\(output)")
        let lines = output.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(lines.contains("patients id bigint INTEGER no 1"), "\(output)")
        #expect(lines.contains("patients weight numeric DECIMAL(6,2) yes"), "\(output)")
        #expect(lines.contains("patients born date DATE yes"), "\(output)")
        #expect(output.contains("cannot extract visits: source table visits row 1 column n (declared INTEGER)"), "\(output)")
        #expect(output.contains("sqlite source: 1 of 2 tables can be extracted"), "\(output)")
        #expect(!output.contains("not a number"), "values are never shown")
        #expect(!FileManager.default.fileExists(atPath: bucket), "nothing is written")
    }
}
