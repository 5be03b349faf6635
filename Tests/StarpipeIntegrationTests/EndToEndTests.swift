import Foundation
import StarpipePostgres
import Testing

/// The walking skeleton's acceptance, against the live Postgres.
@Suite("Synthea end to end")
struct EndToEndTests {
    @Test("every mapped table reaches production with one row per distinct source key")
    func demoReachesProduction() throws {
        let demo = try SyntheaPipeline()
        try demo.extract()
        try demo.work()
        let jobs = try demo.jobs()
        #expect(jobs.count == 18)
        #expect(jobs.allSatisfy { $0.status == "SUCCESS" }, "\(jobs.filter { $0.status != "SUCCESS" })")
        let source = try demo.source()
        let pipeline = try demo.pipeline()
        for (table, target) in SyntheaPipeline.sourceKeys {
            let distinctKeys = try demo.count("SELECT count(DISTINCT (\(target.key))) FROM public.\(table)", on: source)
            let production = try demo.count("SELECT count(*) FROM production.\(target.target)", on: pipeline)
            #expect(distinctKeys > 0)
            #expect(production == distinctKeys, "\(table): production \(production), distinct source keys \(distinctKeys)")
        }
        // Cleaning rules ran: Synthea's digits are gone from names.
        #expect(try demo.count("SELECT count(*) FROM production.patients WHERE first_name ~ '[0-9]'", on: pipeline) == 0)
        // Raw keeps every row with its lineage.
        #expect(try demo.count("""
            SELECT count(*) FROM raw_synthea_demo.medications
             WHERE _source_file LIKE 'client=synthea_demo/table=medications/%/data.json' AND _source_row BETWEEN 1 AND 663
            """, on: pipeline) == 663)
    }

    @Test("extracting unchanged data again records DUPLICATE jobs and leaves production byte-for-byte unchanged")
    func reExtractIsDuplicate() throws {
        let demo = try SyntheaPipeline()
        try demo.extract()
        try demo.work()
        let targets = SyntheaPipeline.sourceKeys.values.map(\.target).sorted()
        let before = try targets.map(demo.fingerprint)
        try demo.extract()
        try demo.work()
        let jobs = try demo.jobs()
        #expect(jobs.count == 36)
        #expect(jobs.suffix(18).allSatisfy { $0.status == "DUPLICATE" })
        #expect(try targets.map(demo.fingerprint) == before)
        let pipeline = try demo.pipeline()
        #expect(try demo.count("SELECT count(*) FROM starpipe.job WHERE status = 'DUPLICATE' AND duplicate_of IS NULL", on: pipeline) == 0)
    }

    @Test("a data file without a manifest is never ingested")
    func dataWithoutManifest() throws {
        let demo = try SyntheaPipeline()
        let manifests = try demo.extract(tables: ["patients"], runID: "no-manifest")
        let directory = "client=synthea_demo/table=patients/date=\(manifests[0].snapshotDate.replacingOccurrences(of: "-", with: ""))/run_id=no-manifest/"
        try FileManager.default.removeItem(atPath: demo.bucketDirectory + "/" + directory + "manifest.json")
        #expect(FileManager.default.fileExists(atPath: demo.bucketDirectory + "/" + directory + "data.json"))
        try demo.work()
        #expect(try demo.jobs().isEmpty)
        let pipeline = try demo.pipeline()
        #expect(try pipeline.query("SELECT to_regclass('raw_synthea_demo.patients')::text").scalar == nil)
    }

    @Test("a renamed source column blocks the job with the column's name, and a mapping change lets it through")
    func renamedColumnBlocks() throws {
        let demo = try SyntheaPipeline()
        try demo.extract(tables: ["patients"], runID: "before")
        try demo.work()
        let before = try demo.fingerprint("patients")
        try demo.source().execute(#"ALTER TABLE patients RENAME COLUMN "BIRTHDATE" TO "DOB""#)
        try demo.extract(tables: ["patients"], runID: "after")
        try demo.work()
        let jobs = try demo.jobs()
        #expect(jobs.map(\.status) == ["SUCCESS", "BLOCKED"])
        let error = try #require(jobs[1].error)
        #expect(error.contains("BIRTHDATE"))
        #expect(error.contains("DOB"))
        #expect(try demo.fingerprint("patients") == before)

        // The operator maps the new name and retries: the job resumes and production is correct.
        let yaml = try String(contentsOf: TestServer.repo.appendingPathComponent("examples/synthea/mapping.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "{ from: BIRTHDATE }", with: "{ from: DOB }")
        let pipeline = try demo.pipeline()
        _ = try pipeline.query("SELECT starpipe.apply_mapping($1::jsonb)", [try MappingJSON.from(yaml)])
        _ = try pipeline.query("SELECT starpipe.retry(job_id) FROM starpipe.job WHERE status = 'BLOCKED'")
        try demo.work()
        #expect(try demo.jobs().map(\.status) == ["SUCCESS", "SUCCESS"])
        #expect(try demo.count("SELECT count(*) FROM production.patients WHERE birth_date IS NULL", on: pipeline) == 0)
        #expect(try demo.fingerprint("patients") == before)
    }
}
