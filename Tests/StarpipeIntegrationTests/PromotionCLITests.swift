import Foundation
import StarpipePostgres
import Testing

/// Issue 10 through the operator's commands: `starpipe verify` and `starpipe promote --allow-mass-delete`,
/// run as the built executable against a private copy of the demo.
@Suite("Promotion audit from the CLI")
struct PromotionCLITests {
    /// Runs `starpipe ARGS`; returns its exit status and everything it printed.
    private func starpipe(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try WorkerProcess.cli(arguments)
    }

    @Test("starpipe verify agrees for every promoted job, then names the source row of a production row changed by hand, never its value")
    func verifyFindsAHandEdit() throws {
        let demo = try SyntheaPipeline()
        try demo.extract()
        try demo.work()
        let pipeline = try demo.pipeline()
        let promoted = try pipeline.query(
            "SELECT job_id, table_name FROM starpipe.job WHERE status = 'SUCCESS' AND stage = 'promoted' ORDER BY job_id").rows
        #expect(promoted.count == 8)
        for row in promoted {
            let result = try starpipe(["verify", row[0]!, "--database", demo.pipelineURL])
            #expect(result.status == 0, "verify \(row[1]!): \(result.output)")
            #expect(result.output.contains("production"))
        }
        let job = try #require(promoted.first { $0[1] == "patients" }?[0])
        // A canary stands in for the PHI a DBA might type: verify must say where, never what.
        let canary = "CANARY-7f3a9c"
        let patient = try #require(try pipeline.query("SELECT patient_id FROM production.patients ORDER BY patient_id LIMIT 1").scalar)
        try pipeline.execute("UPDATE production.patients SET last_name = '\(canary)' WHERE patient_id = '\(patient)'")
        let sourceRow = try #require(try pipeline.query("""
            SELECT _source_row FROM raw_synthea_demo.patients WHERE "Id" = '\(patient)' AND _ingestion_id = \(job)
            """).scalar)
        let table = try starpipe(["verify", job, "--database", demo.pipelineURL])
        #expect(table.status == 1, "\(table.output)")
        #expect(table.output.contains("NO"))
        #expect(!table.output.contains(canary))
        let json = try starpipe(["verify", job, "--json", "--database", demo.pipelineURL])
        #expect(json.status == 1)
        #expect(!json.output.contains(canary))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        let stages = try #require(document["stages"] as? [[String: Any]])
        let production = try #require(stages.first { $0["stage"] as? String == "production" })
        #expect(production["agrees"] as? Bool == false)
        let detail = try #require(production["detail"] as? [String: Any])
        #expect(detail["differing_rows"] as? Int == 1)
        #expect((detail["sample_source_rows"] as? [Int]) == [Int(sourceRow)!])
        #expect(stages.first { $0["stage"] as? String == "raw" }?["agrees"] as? Bool == true)
        #expect(stages.first { $0["stage"] as? String == "staged" }?["agrees"] as? Bool == true)
    }

    @Test("a truncated source table is held by the mass-delete guard; --allow-mass-delete promotes it and is audited")
    func massDeleteGuard() throws {
        let demo = try SyntheaPipeline()
        let pipeline = try demo.pipeline()
        try pipeline.execute("ALTER TABLE production.allergies ADD COLUMN deleted_at timestamptz")
        try pipeline.execute("""
            SELECT starpipe.apply_mapping(jsonb_set(config, '{tables,allergies,deletes}', '{"rule": "soft", "column": "deleted_at"}'))
              FROM starpipe.mapping ORDER BY version DESC LIMIT 1
            """)
        try demo.extract(tables: ["allergies"], runID: "full")
        try demo.work()
        let before = try demo.count("SELECT count(*) FROM production.allergies", on: pipeline)
        #expect(before > 10)
        // The client's table lost most of its rows (a bad export, a truncate): keep 5.
        try demo.source().execute("""
            DELETE FROM public.allergies WHERE ctid NOT IN (SELECT ctid FROM public.allergies ORDER BY "PATIENT", "CODE" LIMIT 5)
            """)
        let remaining = try demo.count(#"SELECT count(DISTINCT ("PATIENT", "ENCOUNTER", "CODE")) FROM public.allergies"#, on: try demo.source())
        try demo.extract(tables: ["allergies"], runID: "truncated")
        try demo.work()
        let held = try #require(try pipeline.query(
            "SELECT job_id, status, stage, error FROM starpipe.job WHERE run_id = 'truncated'").rows.first)
        #expect(held[1] == "BLOCKED" && held[2] == "validated")
        #expect(held[3]?.contains("mass-delete guard") == true)
        #expect(try demo.count("SELECT count(*) FROM production.allergies WHERE deleted_at IS NOT NULL", on: pipeline) == 0)

        let plain = try starpipe(["promote", held[0]!, "--database", demo.pipelineURL])
        #expect(plain.status != 0, "\(plain.output)")
        #expect(plain.output.contains("would delete"))
        let allowed = try starpipe(["promote", held[0]!, "--allow-mass-delete", "--database", demo.pipelineURL])
        #expect(allowed.status == 0, "\(allowed.output)")
        #expect(allowed.output.contains("SUCCESS"))
        #expect(try demo.count("SELECT count(*) FROM production.allergies WHERE deleted_at IS NULL", on: pipeline) == remaining)
        #expect(try demo.count("SELECT count(*) FROM starpipe.deletion WHERE job_id = \(held[0]!) AND rule = 'soft'", on: pipeline)
                == before - remaining)
        let audit = try #require(try pipeline.query("""
            SELECT deleted, (deletes->>'allowed_by_override')::boolean, manual, actor = current_user FROM starpipe.promotion
             WHERE job_id = \(held[0]!)
            """).rows.first)
        #expect(audit == [String(before - remaining), "t", "t", "t"])
        let verified = try starpipe(["verify", held[0]!, "--database", demo.pipelineURL])
        #expect(verified.status == 0, "\(verified.output)")
    }
}
