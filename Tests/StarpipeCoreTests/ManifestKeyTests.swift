import StarpipeCore
import Testing

@Suite("Bucket keys")
struct ManifestKeyTests {
    @Test("structured keys parse, with or without a prefix")
    func structured() throws {
        let key = try #require(try ManifestKey.parse("client=acme/table=patients/date=20261101/run_id=r-1/manifest.json"))
        #expect(key.layout == .structured)
        #expect(key.client == "acme")
        #expect(key.table == "patients")
        #expect(key.date.iso == "2026-11-01")
        #expect(key.runID == "r-1")
        #expect(key.dataKey(dataFile: "data.json") == "client=acme/table=patients/date=20261101/run_id=r-1/data.json")
        let prefixed = try #require(try ManifestKey.parse("incoming/client=acme/table=t/date=20260102/run_id=x/manifest.json"))
        #expect(prefixed.directory == "incoming/client=acme/table=t/date=20260102/run_id=x/")
    }

    @Test("flat keys parse and fold case")
    func flat() throws {
        let key = try #require(try ManifestKey.parse("PATIENTS-ACME-01112026.manifest.json"))
        #expect(key.layout == .flat)
        #expect(key.table == "patients")
        #expect(key.client == "acme")
        #expect(key.date.iso == "2026-11-01")
        #expect(key.runID == nil)
    }

    @Test("non-manifest keys are ignored")
    func notManifests() throws {
        #expect(try ManifestKey.parse("client=acme/table=t/date=20261101/run_id=r/data.json") == nil)
        #expect(try ManifestKey.parse("PATIENTS-ACME-01112026.json") == nil)
    }

    @Test("names that could escape a prefix or an identifier are rejected", arguments: [
        "client=../x/table=t/date=20261101/run_id=r/manifest.json",
        "client=Acme/table=t/date=20261101/run_id=r/manifest.json",
        "client=a;drop/table=t/date=20261101/run_id=r/manifest.json",
        "client=acme/table=t/date=20261301/run_id=r/manifest.json",
        "client=acme/table=t/date=20261101/run_id=../manifest.json",
        "client=acme/table=t/manifest.json",
        "client=acme/table=people__12/date=20261101/run_id=r/manifest.json",
        "PATIENTS-AC/ME-01112026.manifest.json",
        "PATIENTS-ACME-31022026.manifest.json",
    ])
    func rejected(key: String) {
        #expect(throws: StarpipeError.self) { try ManifestKey.parse(key) }
    }

    @Test("a manifest must say what its key says")
    func manifestMatchesKey() throws {
        let key = try #require(try ManifestKey.parse("client=acme/table=patients/date=20261101/run_id=r1/manifest.json"))
        var manifest = Manifest(
            client: "acme", table: "patients", source: .init(kind: "postgres", database: "db", schema: "public", table: "patients"),
            snapshotDate: "2026-11-01", extractedAt: "2026-11-01T00:00:00Z", runId: "r1", rowCount: 1, byteCount: 2,
            sha256: String(repeating: "a", count: 64), columns: [.init(name: "Id", type: "uuid", nullable: false)], primaryKey: ["Id"])
        try key.check(manifest)
        manifest.client = "other"
        #expect(throws: StarpipeError.self) { try key.check(manifest) }
    }
}
