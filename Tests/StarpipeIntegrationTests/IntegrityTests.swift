import Crypto
import Foundation
import StarpipeCore
import StarpipePostgres
import Testing

/// Files that are not what their manifest says, and values that do not fit: the job fails with a
/// precise reason, no row reaches raw, and no value appears in the error.
@Suite("Integrity of data files")
struct IntegrityTests {
    /// Extracts patients, lets `damage` change the data file (and manifest), runs the worker and
    /// returns the job's status and error after checking that raw holds nothing of it.
    private func ingestDamaged(_ damage: (inout Data, inout Manifest) throws -> Void) throws -> (status: String, error: String) {
        let demo = try SyntheaPipeline()
        var manifest = try demo.extract(tables: ["patients"], runID: "damaged")[0]
        let directory = demo.bucketDirectory + "/" + ManifestKey.structuredDirectory(
            client: manifest.client, table: manifest.table, date: SnapshotDate(iso: manifest.snapshotDate)!, runID: manifest.runId)
        var data = try Data(contentsOf: URL(fileURLWithPath: directory + "data.json"))
        try damage(&data, &manifest)
        try data.write(to: URL(fileURLWithPath: directory + "data.json"))
        try manifest.encoded().write(to: URL(fileURLWithPath: directory + "manifest.json"))
        try demo.work()
        let pipeline = try demo.pipeline()
        let row = try #require(try pipeline.query("SELECT status, error, starpipe.raw_version(job_id)::text FROM starpipe.job").rows.first)
        #expect(row[2] == nil, "a raw version exists for a damaged file")
        if try pipeline.query("SELECT to_regclass('raw_synthea_demo.patients')::text").scalar != nil {
            #expect(try demo.count("SELECT count(*) FROM raw_synthea_demo.patients", on: pipeline) == 0)
        }
        return (row[0]!, row[1] ?? "")
    }

    private static func sha256(_ data: Data) -> String {
        SHA256.hash(data: data).lowercaseHex
    }

    @Test("a data file truncated after extraction fails on its byte count")
    func truncated() throws {
        let result = try ingestDamaged { data, _ in data = data.prefix(data.count - 200) }
        #expect(result.status == "FAILED")
        #expect(result.error.contains("byte count mismatch"))
    }

    @Test("a data file changed in place (same size) fails on its sha256, and the COPY is rolled back")
    func corrupted() throws {
        let result = try ingestDamaged { data, _ in
            let middle = data.count / 2
            data[middle] = data[middle] == UInt8(ascii: "a") ? UInt8(ascii: "b") : UInt8(ascii: "a")
        }
        #expect(result.status == "FAILED")
        #expect(result.error.contains("sha256 mismatch"))
    }

    @Test("a manifest whose row count disagrees with its file fails on the row count")
    func rowCountLie() throws {
        let result = try ingestDamaged { _, manifest in manifest.rowCount += 1 }
        #expect(result.status == "FAILED")
        #expect(result.error.contains("row count mismatch"))
    }

    @Test("a value that does not fit its raw column fails with file, row and column, never the value")
    func badValue() throws {
        let secret = "PHI-SECRET-9f3a"
        let result = try ingestDamaged { data, manifest in
            var text = String(decoding: data, as: UTF8.self)
            // Third row's Id becomes text that is not a uuid.
            let rows = text.components(separatedBy: ",\n{\"Id\":\"")
            let third = try #require(rows.count > 3 ? rows[2] : nil)
            let id = String(third.prefix(36))
            text = text.replacingOccurrences(of: id, with: secret)
            data = Data(text.utf8)
            manifest.byteCount = Int64(data.count)
            manifest.sha256 = Self.sha256(data)
        }
        #expect(result.status == "FAILED")
        #expect(result.error.contains("row 3"), "\(result.error)")
        #expect(result.error.contains("column Id"), "\(result.error)")
        #expect(result.error.contains("data.json"))
        #expect(!result.error.contains(secret))
    }

    @Test("a syntax error in the data file names its row and keeps the value out")
    func syntaxError() throws {
        let result = try ingestDamaged { data, manifest in
            var text = String(decoding: data, as: UTF8.self)
            let marker = try #require(text.range(of: "\"FIRST\":\""))
            text.replaceSubrange(marker, with: "\"FIRST\":PHI-SECRET-name\"")
            data = Data(text.utf8)
            manifest.byteCount = Int64(data.count)
            manifest.sha256 = Self.sha256(data)
        }
        #expect(result.status == "FAILED")
        #expect(result.error.contains("row 1"), "\(result.error)")
        #expect(!result.error.contains("PHI-SECRET"))
    }
}
