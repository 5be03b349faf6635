import Foundation
import StarpipeCore
import Testing

@Suite("Manifest")
struct ManifestTests {
    private let manifest = Manifest(
        client: "acme", table: "patients", source: .init(kind: "postgres", database: "db", schema: "public", table: "Patients"),
        snapshotDate: "2026-11-01", extractedAt: "2026-11-01T00:00:00Z", runId: "r1", rowCount: 3, byteCount: 300,
        sha256: String(repeating: "0", count: 64),
        columns: [.init(name: "Id", type: "uuid", nullable: false), .init(name: "BIRTHDATE", type: "date", nullable: true)],
        primaryKey: ["Id"])

    @Test("encodes with the documented field names and decodes back")
    func roundTrip() throws {
        let data = manifest.encoded()
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for field in ["format_version", "client", "table", "source", "snapshot_date", "extracted_at", "run_id", "mode",
                      "data_file", "format", "row_count", "byte_count", "sha256", "columns", "primary_key"] {
            #expect(object[field] != nil, "missing \(field)")
        }
        #expect(try Manifest.decode(data) == manifest)
        #expect(manifest.encoded() == data, "encoding is deterministic")
    }

    @Test("bad manifests are rejected with the field named")
    func rejected() throws {
        var bad = manifest
        bad.sha256 = "XYZ"
        #expect(throws: StarpipeError.self) { try Manifest.decode(bad.encoded()) }
        bad = manifest
        bad.dataFile = "../etc/passwd"
        #expect(throws: StarpipeError.self) { try Manifest.decode(bad.encoded()) }
        bad = manifest
        bad.columns = []
        #expect(throws: StarpipeError.self) { try Manifest.decode(bad.encoded()) }
        do {
            _ = try Manifest.decode(Data(#"{"format_version": 1}"#.utf8))
            Issue.record("accepted a manifest without fields")
        } catch {
            #expect(error.message.contains("missing field"))
        }
    }

    @Test("snapshot dates are real calendar dates")
    func dates() {
        #expect(SnapshotDate(iso: "2024-02-29") != nil)
        #expect(SnapshotDate(iso: "2023-02-29") == nil)
        #expect(SnapshotDate(compact: "01112026", dayFirst: true)?.iso == "2026-11-01")
        #expect(SnapshotDate(iso: "2026-1-01") == nil)
    }
}

@Suite("Manifest JSON Schema")
struct ManifestSchemaTests {
    @Test("docs/manifest.schema.json requires exactly the fields the extractor writes")
    func schemaMatchesEncoding() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let schemaData = try Data(contentsOf: repo.appendingPathComponent("docs/manifest.schema.json"))
        let schema = try #require(try JSONSerialization.jsonObject(with: schemaData) as? [String: Any])
        let required = Set(try #require(schema["required"] as? [String]))
        let properties = Set(try #require(schema["properties"] as? [String: Any]).keys)
        let manifest = Manifest(
            client: "acme", table: "t", source: .init(kind: "postgres", database: nil, schema: nil, table: "t"),
            snapshotDate: "2026-11-01", extractedAt: "2026-11-01T00:00:00Z", runId: "r", rowCount: 0, byteCount: 3,
            sha256: String(repeating: "0", count: 64), columns: [.init(name: "a", type: "text", nullable: true)], primaryKey: [])
        let encoded = try #require(try JSONSerialization.jsonObject(with: manifest.encoded()) as? [String: Any])
        #expect(Set(encoded.keys) == required)
        #expect(properties == required.union(["incremental"]), "incremental is the one optional field")
        // Columns: name, type and nullable always; source_type only when it differs from type (a domain); encoding
        // only on a base64 bytea column (MariaDB and SQLite blobs).
        let columnSchema = try #require(((schema["properties"] as? [String: Any])?["columns"] as? [String: Any])?["items"] as? [String: Any])
        #expect(Set(try #require(columnSchema["required"] as? [String])) == ["name", "type", "nullable"])
        #expect(Set(try #require(columnSchema["properties"] as? [String: Any]).keys) == ["name", "type", "nullable", "source_type", "encoding"])
        let columns = try #require(encoded["columns"] as? [[String: Any]])
        #expect(Set(columns[0].keys) == ["name", "type", "nullable"])
        var domain = manifest
        domain.columns = [.init(name: "a", type: "character varying(100)", nullable: true, sourceType: "public.email")]
        let domainColumns = try #require((try JSONSerialization.jsonObject(with: domain.encoded()) as? [String: Any])?["columns"] as? [[String: Any]])
        #expect(domainColumns[0]["source_type"] as? String == "public.email")
        #expect(try Manifest.decode(domain.encoded()) == domain)
        var blob = manifest
        blob.columns = [.init(name: "a", type: "bytea", nullable: true, encoding: Manifest.Column.base64)]
        let blobColumns = try #require((try JSONSerialization.jsonObject(with: blob.encoded()) as? [String: Any])?["columns"] as? [[String: Any]])
        #expect(blobColumns[0]["encoding"] as? String == "base64" && blobColumns[0]["source_type"] == nil)
        #expect(try Manifest.decode(blob.encoded()) == blob)
        // Incremental: cursor, watermarks and policy; low_watermark only after a first run.
        let incrementalSchema = try #require((schema["properties"] as? [String: Any])?["incremental"] as? [String: Any])
        #expect(Set(try #require(incrementalSchema["required"] as? [String])) == ["cursor", "high_watermark", "null_cursor"])
        #expect(Set(try #require(incrementalSchema["properties"] as? [String: Any]).keys) == ["cursor", "low_watermark", "high_watermark", "null_cursor"])
        var incremental = manifest
        incremental.mode = .incremental
        incremental.incremental = .init(cursor: ["updated_at"], lowWatermark: "2026-11-01T00:00:00.000000Z",
                                        highWatermark: "2026-11-02T00:00:00.000000Z", nullCursor: "include")
        let block = try #require((try JSONSerialization.jsonObject(with: incremental.encoded()) as? [String: Any])?["incremental"] as? [String: Any])
        #expect(Set(block.keys) == ["cursor", "low_watermark", "high_watermark", "null_cursor"])
    }

    @Test("incremental manifests: the block round-trips, needs mode incremental and instants; older ones stay valid")
    func incremental() throws {
        let manifest = Manifest(
            client: "acme", table: "t", source: .init(kind: "postgres", database: nil, schema: nil, table: "t"),
            snapshotDate: "2026-11-01", extractedAt: "2026-11-01T00:00:00Z", runId: "r", rowCount: 0, byteCount: 3,
            sha256: String(repeating: "0", count: 64), columns: [.init(name: "a", type: "text", nullable: true)], primaryKey: [])
        var incremental = manifest
        incremental.mode = .incremental
        incremental.incremental = .init(cursor: ["updated_at", "created_at"], lowWatermark: nil,
                                        highWatermark: "2026-11-02T00:00:00.000000Z", nullCursor: "fail")
        #expect(try Manifest.decode(incremental.encoded()) == incremental)
        let object = try #require(try JSONSerialization.jsonObject(with: incremental.encoded()) as? [String: Any])
        #expect((object["incremental"] as? [String: Any])?["low_watermark"] == nil, "a first run has no low watermark")
        var modeless = incremental
        modeless.incremental = nil
        #expect(try Manifest.decode(modeless.encoded()).incremental == nil, "mode incremental without the block (other writers)")
        var full = incremental
        full.mode = .full
        #expect(throws: StarpipeError.self) { try Manifest.decode(full.encoded()) }
        var bad = incremental
        bad.incremental?.highWatermark = "yesterday"
        #expect(throws: StarpipeError.self) { try Manifest.decode(bad.encoded()) }
        bad = incremental
        bad.incremental?.cursor = []
        #expect(throws: StarpipeError.self) { try Manifest.decode(bad.encoded()) }
    }
}
