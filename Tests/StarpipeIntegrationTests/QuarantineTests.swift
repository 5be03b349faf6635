import Foundation
import StarpipeMapping
import StarpipePostgres
import Testing

/// Issue 11's acceptance on a Synthea-based file: the sample's patients a hundred times over (2,700 rows), with 1 %
/// bad birth dates (one of them a PHI canary), 1 % unknown gender codes and one missing birth date.
@Suite("Row quarantine on Synthea patients")
struct QuarantineTests {
    static let canary = "PHI-CANARY-7731"
    static let rows = 2700
    static let badDates = 27
    static let unknownCodes = 27

    /// The patients mapping: US dates, a gender map without unmapped codes, and a budget.
    static func mapping(budget: String, fixed: Bool = false, extraChecks: String = "") -> String {
        """
        version: 1
        client: synthea_demo
        target_schema: production
        tables:
          patients:
            target: patients
            conflict_key: [patient_id]
            rejects: \(budget)
            columns:
              patient_id:  { from: Id }
              birth_date:  { from: BIRTHDATE, clean: [trim], \(fixed
                ? #"regex_replace: [{pattern: "^(13/.*|[^0-9].*)$", replacement: "N/A"}], null_values: ["N/A"], default: "1900-01-01", "#
                : "")formats: [MM/DD/YYYY, ISO] }
              first_name:  { from: FIRST, clean: [trim, strip_digits] }
              gender:      { from: GENDER, clean: [trim, upper], map: { M: M, F: F\(fixed ? ", X: null" : "") } }
              city:        { from: CITY, clean: [trim] }
              source_system: { const: synthea }
            checks:
              - min_rows: 1\(extraChecks)
        """
    }

    /// A fresh pipeline whose client patients table is the Synthea sample ×100 with the planted faults.
    static func pipeline(budget: String, extraChecks: String = "") throws -> SyntheaPipeline {
        let demo = try SyntheaPipeline()
        try demo.source().execute("""
            ALTER TABLE patients ALTER COLUMN "BIRTHDATE" TYPE text USING to_char("BIRTHDATE", 'MM/DD/YYYY');
            INSERT INTO patients SELECT (jsonb_populate_record(NULL::patients, to_jsonb(p) || jsonb_build_object('Id', gen_random_uuid()))).*
              FROM patients p, generate_series(1, 99);
            WITH n AS (SELECT "Id", row_number() OVER (ORDER BY "Id") AS i FROM patients)
            UPDATE patients p SET "BIRTHDATE" = CASE WHEN n.i = 1 THEN '\(canary)' ELSE '13/45/2019' END FROM n
             WHERE n."Id" = p."Id" AND n.i % 100 = 1;
            WITH n AS (SELECT "Id", row_number() OVER (ORDER BY "Id") AS i FROM patients)
            UPDATE patients p SET "GENDER" = 'X' FROM n WHERE n."Id" = p."Id" AND n.i % 100 = 50;
            WITH n AS (SELECT "Id", row_number() OVER (ORDER BY "Id") AS i FROM patients)
            UPDATE patients p SET "BIRTHDATE" = NULL FROM n WHERE n."Id" = p."Id" AND n.i = 77;
            """)
        try MappingConfig(yaml: mapping(budget: budget, extraChecks: extraChecks)).apply(to: demo.pipeline())
        return demo
    }

    /// Runs the starpipe executable; returns its exit status and output.
    static func cli(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try WorkerProcess.cli(arguments)
    }

    /// Runs `starpipe worker --until-idle` as a process; returns its log.
    static func work(_ demo: SyntheaPipeline) throws -> String {
        let worker = try WorkerProcess(database: demo.pipelineURL, bucket: demo.bucketDirectory, arguments: ["--until-idle"])
        #expect(worker.waitForExit(timeout: 120) == 0)
        return worker.log()
    }

    /// Everything the ledger says about jobs, as text: errors, details, events and rejects.
    static func ledgerText(_ pipeline: PostgresConnection) throws -> String {
        try pipeline.query("""
            SELECT concat_ws(' ', (SELECT string_agg(concat_ws(' ', error, error_detail::text), ' ') FROM starpipe.job),
                             (SELECT string_agg(detail::text, ' ') FROM starpipe.job_event),
                             (SELECT string_agg(r::text, ' ') FROM starpipe.reject r))
            """).scalar ?? ""
    }

    @Test("good rows are promoted, bad rows rejected with row and rule, reconciliation exact, the canary nowhere; replay promotes only them, once")
    func quarantineAndReplay() throws {
        let demo = try Self.pipeline(budget: "{ max_fraction: 0.03 }")
        try demo.extract(tables: ["patients"])
        var log = try Self.work(demo)
        let pipeline = try demo.pipeline()
        let job = try pipeline.query("SELECT job_id::text, status, rows_raw::text, rows_staged::text, rows_rejected::text, rows_deduplicated::text FROM starpipe.job").rows
        #expect(job.count == 1)
        let firstError = try pipeline.query("SELECT error FROM starpipe.job").scalar ?? ""
        #expect(job.first?[1] == "SUCCESS", "\(firstError)")
        let jobID = job[0][0]!
        let rejected = Self.badDates + Self.unknownCodes + 1
        #expect(job[0][2] == String(Self.rows))
        #expect(job[0][3] == String(Self.rows - rejected))
        #expect(job[0][4] == String(rejected))
        #expect(job[0][5] == "0")
        #expect(try demo.count("SELECT count(*) FROM production.patients", on: pipeline) == Self.rows - rejected)
        // By column and rule, with the right counts (an out-of-range date and one in no format differ in SQLSTATE only);
        // the canary's row is named by its source row number.
        let groups = try pipeline.query("SELECT target_column, rule, sum(rows)::text FROM starpipe.rejects(\(jobID)) GROUP BY 1, 2 ORDER BY 1, 2").rows
            .map { "\($0[0] ?? "") \($0[1]!) \($0[2]!)" }
        #expect(groups == ["birth_date formats \(Self.badDates)", "birth_date not_null 1", "gender map \(Self.unknownCodes)"])
        let canaryRow = try pipeline.query("SELECT _source_row::text FROM raw_synthea_demo.patients WHERE \"BIRTHDATE\" = '\(Self.canary)'").scalar
        #expect(try demo.count("SELECT count(*) FROM starpipe.reject WHERE source_row = \(canaryRow ?? "0") AND rule = 'formats' AND sqlstate = 'SP008'",
                               on: pipeline) == 1)
        // The CLI lists the same, with sample rows.
        let list = try Self.cli(["rejects", "list", "--job", jobID, "--database", demo.pipelineURL])
        #expect(list.status == 0)
        #expect(list.output.contains("formats") && list.output.contains("not_null") && list.output.contains("map"), "\(list.output)")

        // The fix: the bad dates become a default, X a NULL gender. The replay promotes only the formerly rejected rows.
        let before = try demo.fingerprint("patients")
        try MappingConfig(yaml: Self.mapping(budget: "{ max_fraction: 0.03 }", fixed: true)).apply(to: pipeline)
        let replay = try Self.cli(["rejects", "replay", jobID, "--database", demo.pipelineURL])
        #expect(replay.status == 0)
        #expect(replay.output.contains("queued as job"), "\(replay.output)")
        log += try Self.work(demo)
        #expect(try demo.count("SELECT count(*) FROM starpipe.job WHERE status = 'SUCCESS'", on: pipeline) == 2)
        #expect(try demo.count("SELECT count(*) FROM production.patients", on: pipeline) == Self.rows)
        #expect(try demo.count("SELECT count(*) FROM starpipe.reject WHERE job_id = \(jobID) AND resolved_at IS NULL", on: pipeline) == 0)
        // The rows promoted the first time are untouched: the production rows that are not replayed rows hash the same.
        #expect(try pipeline.query("""
            SELECT coalesce(md5(string_agg(r, '|' ORDER BY r)), 'empty')
              FROM (SELECT (to_jsonb(v_row) - 'loaded_at')::text AS r FROM production.patients v_row
                     WHERE birth_date <> '1900-01-01' AND gender IS NOT NULL) s
            """).scalar == before)
        // A second replay has nothing left and applies nothing.
        let after = try demo.fingerprint("patients")
        let again = try Self.cli(["rejects", "replay", jobID, "--database", demo.pipelineURL])
        #expect(again.status == 0 && again.output.contains("nothing to replay"), "\(again.output)")
        log += try Self.work(demo)
        #expect(try demo.fingerprint("patients") == after)
        #expect(try demo.count("SELECT count(*) FROM starpipe.job", on: pipeline) == 2)

        // The canary is in no error, event, reject, CLI output or worker log.
        let ledger = try Self.ledgerText(pipeline)
        #expect(!ledger.isEmpty)
        for text in [ledger, list.output, replay.output, again.output, log] {
            #expect(!text.contains(Self.canary))
        }
    }

    @Test("past the reject budget the job is FAILED and production unchanged")
    func overBudget() throws {
        let demo = try Self.pipeline(budget: "{ max_rows: 10 }")
        try demo.extract(tables: ["patients"])
        let log = try Self.work(demo)
        let pipeline = try demo.pipeline()
        let row = try pipeline.query("SELECT status, stage, error FROM starpipe.job").rows.first
        #expect(row?[0] == "FAILED")
        #expect(row?[2]?.contains("over the reject budget (max_rows 10)") == true, "\(row?[2] ?? "")")
        #expect(try demo.count("SELECT count(*) FROM production.patients", on: pipeline) == 0)
        #expect(!(try Self.ledgerText(pipeline)).contains(Self.canary))
        #expect(!log.contains(Self.canary))
    }

    @Test("a phantom NULL in an always-populated column blocks the next snapshot with the column and row numbers")
    func phantomNull() throws {
        let demo = try Self.pipeline(budget: "{ max_fraction: 0.03 }", extraChecks: "\n      - null_drift: { column: city, max: 0.01 }")
        try demo.extract(tables: ["patients"])
        _ = try Self.work(demo)
        // Upstream, a third of the cities go missing (the column is still there, so this is no drift block).
        try demo.source().execute("""
            WITH n AS (SELECT "Id", row_number() OVER (ORDER BY "Id") AS i FROM patients)
            UPDATE patients p SET "CITY" = NULL FROM n WHERE n."Id" = p."Id" AND n.i % 3 = 0
            """)
        try demo.extract(tables: ["patients"], runID: "second")
        _ = try Self.work(demo)
        let pipeline = try demo.pipeline()
        let second = try pipeline.query("SELECT status, stage, error FROM starpipe.job ORDER BY job_id").rows
        #expect(second.count == 2)
        #expect(second.last?[0] == "BLOCKED" && second.last?[1] == "transformed")
        let error = second.last?[2] ?? ""
        #expect(error.contains("null_drift(city)") && error.contains("e.g. source rows ["), "\(error)")
        // Production still has the first snapshot's cities.
        #expect(try demo.count("SELECT count(*) FROM production.patients WHERE city IS NULL", on: pipeline) == 0)
    }

    @Test("a production CHECK constraint added later is enforced in staging, before promotion")
    func checkAddedLater() throws {
        let demo = try Self.pipeline(budget: "{ max_fraction: 0.03 }")
        try demo.extract(tables: ["patients"])
        _ = try Self.work(demo)
        let pipeline = try demo.pipeline()
        try pipeline.execute("ALTER TABLE production.patients ADD CONSTRAINT first_name_not_test CHECK (first_name <> 'Checkme')")
        try demo.source().execute("""
            WITH n AS (SELECT "Id", row_number() OVER (ORDER BY "Id") AS i FROM patients)
            UPDATE patients p SET "FIRST" = 'Checkme' FROM n WHERE n."Id" = p."Id" AND n.i IN (10, 20)
            """)
        try demo.extract(tables: ["patients"], runID: "second")
        _ = try Self.work(demo)
        let jobs = try pipeline.query("SELECT job_id::text, status FROM starpipe.job ORDER BY job_id").rows
        #expect(jobs.map { $0[1] } == ["SUCCESS", "SUCCESS"])
        let second = jobs.last?[0] ?? "0"
        #expect(try demo.count("""
            SELECT count(*) FROM starpipe.reject
             WHERE job_id = \(second) AND rule = 'check' AND constraint_name = 'first_name_not_test' AND sqlstate = '23514'
            """, on: pipeline) == 2)
        #expect(try demo.count("SELECT count(*) FROM production.patients WHERE first_name = 'Checkme'", on: pipeline) == 0)
        #expect(try demo.count("SELECT count(*) FROM starpipe.job WHERE error LIKE '%Checkme%' OR error_detail::text LIKE '%Checkme%'",
                               on: pipeline) == 0)
    }
}
