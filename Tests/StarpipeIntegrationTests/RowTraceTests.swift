import Foundation
import StarpipePostgres
import Testing

/// Issue 14: `starpipe trace --row` answers "which source file and row did this production row come from",
/// run as the built executable against a private copy of the demo.
@Suite("Row lineage from the CLI")
struct RowTraceTests {
    @Test("trace --row names the job, bucket file and source row that last wrote a production row, and the job and row that inserted it, never another value")
    func rowBackToItsFiles() throws {
        let demo = try SyntheaPipeline()
        try demo.extract(tables: ["patients"], runID: "day1")
        try demo.work()
        let pipeline = try demo.pipeline()
        let patient = try #require(try pipeline.query("SELECT patient_id FROM production.patients ORDER BY patient_id LIMIT 1 OFFSET 3").scalar)
        // The client moves the patient to a city that stands in for PHI: trace must say where, never what.
        let canary = "CANARY-c1ty-5e2"
        try demo.source().execute(#"UPDATE public.patients SET "CITY" = '\#(canary)' WHERE "Id" = '\#(patient)'"#)
        try demo.extract(tables: ["patients"], runID: "day2")
        try demo.work()
        let jobs = try pipeline.query("SELECT run_id, job_id, data_key FROM starpipe.job WHERE table_name = 'patients' ORDER BY job_id").rows
        #expect(jobs.map { $0[0] } == ["day1", "day2"])
        let (day1, day2) = (try #require(jobs[0][1]), try #require(jobs[1][1]))
        func sourceRow(_ job: String) throws -> String {
            try #require(try pipeline.query(#"SELECT _source_row FROM raw_synthea_demo.patients WHERE "Id" = $1 AND _ingestion_id = $2"#,
                                            [patient, job]).scalar)
        }
        let (row1, row2) = (try sourceRow(day1), try sourceRow(day2))

        let text = try WorkerProcess.cli(["trace", "--row", "production.patients", "patient_id=\(patient)", "--database", demo.pipelineURL])
        #expect(text.status == 0, "\(text.output)")
        #expect(text.output.contains("in production"))
        #expect(text.output.contains("last written by job \(day2) (synthea_demo.patients"), "\(text.output)")
        #expect(text.output.contains("updated city"), "\(text.output)")
        #expect(text.output.contains("file \(try #require(jobs[1][2])), row \(row2)"), "\(text.output)")
        #expect(text.output.contains("job \(day1) (synthea_demo.patients"), "\(text.output)")
        #expect(text.output.contains("inserted"))
        #expect(text.output.contains("file \(try #require(jobs[0][2])), row \(row1)"), "\(text.output)")
        #expect(!text.output.contains(canary))

        let json = try WorkerProcess.cli(["trace", "--row", "production.patients", "patient_id=\(patient)", "--json",
                                          "--database", demo.pipelineURL])
        #expect(json.status == 0)
        #expect(!json.output.contains(canary))
        let document = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
        let history = try #require(document["history"] as? [[String: Any]])
        #expect(history.map { $0["action"] as? String } == ["updated", "inserted"])
        #expect(history.map { ($0["job_id"] as? Int).map(String.init) } == [day2, day1])
        #expect(history.map { ($0["source_row"] as? Int).map(String.init) } == [row2, row1])
        #expect((document["last_write"] as? [String: Any])?["changed_columns"] as? [String] == ["city"])

        // A key column missing, or a job id with --row, is refused with what to give.
        let wrong = try WorkerProcess.cli(["trace", "--row", "production.patients", "city=x", "--database", demo.pipelineURL])
        #expect(wrong.status != 0)
        #expect(wrong.output.contains("patient_id"), "\(wrong.output)")
        let missing = try WorkerProcess.cli(["trace", "--row", "production.patients", "--database", demo.pipelineURL])
        #expect(missing.status != 0)
    }
}
