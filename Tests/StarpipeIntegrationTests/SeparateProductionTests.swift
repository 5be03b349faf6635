import Foundation
import StarpipePostgres
import Testing

/// Issue 10: promotion into a production database that is not the pipeline database, with a login that is
/// neither superuser nor owner there, and recovery when the worker dies between the two commits.
@Suite("Separate production database")
struct SeparateProductionTests {
    /// The demo with its mapping sent to a second database named "clinic": that database gets the demo's
    /// production tables (no extension) and a login holding only the grants; init creates the ledger.
    private struct Setup {
        let demo: SyntheaPipeline
        let productionURL: String
        let login: String
        var workerProductionURL: String

        init() throws {
            demo = try SyntheaPipeline()
            productionURL = try TestServer.createDatabase("sp_clinic")
            let ddl = try String(contentsOf: TestServer.repo.appendingPathComponent("examples/synthea/production.sql"), encoding: .utf8)
            let tables = String(ddl[..<ddl.range(of: "-- What a DBA runs before starpipe")!.lowerBound])
            let owner = try PostgresConnection(url: productionURL)
            try owner.execute(tables)
            // A login of its own, with the DML grants only (not the owner, not a superuser).
            login = "sp_clinic_\(UInt32.random(in: 0...UInt32.max))"
            try owner.execute("""
                CREATE ROLE \(login) LOGIN;
                GRANT USAGE ON SCHEMA production TO \(login);
                GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA production TO \(login);
                -- The transactions that write production, to prove each job is applied once.
                CREATE TABLE production.write_log (target text, op text, txid bigint DEFAULT txid_current());
                GRANT INSERT ON production.write_log TO \(login);
                CREATE FUNCTION production.log_write() RETURNS trigger LANGUAGE plpgsql AS $f$
                BEGIN INSERT INTO production.write_log (target, op) VALUES (TG_TABLE_NAME, TG_OP); RETURN NULL; END $f$;
                CREATE TRIGGER log_write AFTER INSERT OR UPDATE ON production.patients
                    FOR EACH STATEMENT EXECUTE FUNCTION production.log_write();
                """)
            workerProductionURL = productionURL.replacingOccurrences(of: "postgresql://\(TestServer.user)@", with: "postgresql://\(login)@")
            try demo.pipeline().execute("""
                SELECT starpipe.apply_mapping(config || '{"production": "clinic"}') FROM starpipe.mapping ORDER BY version DESC LIMIT 1
                """)
        }

        func starpipe(_ arguments: [String], url: String? = nil) throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = WorkerProcess.executable
            process.arguments = arguments + ["--database", demo.pipelineURL, "--production", "clinic=\(url ?? workerProductionURL)"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return (process.terminationStatus, text)
        }

        func production() throws -> PostgresConnection { try PostgresConnection(url: productionURL) }
    }

    @Test("production init creates the ledger as the owner and names what the worker's login lacks; then jobs promote there, not into the pipeline's copy")
    func promotesIntoTheSeparateDatabase() throws {
        let setup = try Setup()
        // As the worker's login, the ledger cannot be created (no CREATE on the database): init says so.
        let denied = try setup.starpipe(["production", "init", "clinic"])
        #expect(denied.status != 0)
        // As the owner, init creates the ledger; the check then runs as the owner and passes.
        let created = try setup.starpipe(["production", "init", "clinic"], url: setup.productionURL)
        #expect(created.status == 0, "\(created.output)")
        #expect(created.output.contains("ready"))
        // The worker's login may not write the ledger yet: the check names both tables.
        let missing = try setup.starpipe(["production", "init", "clinic", "--check-only"])
        #expect(missing.status == 1)
        #expect(missing.output.contains("starpipe_ledger.applied"))
        try setup.production().execute("""
            GRANT USAGE ON SCHEMA starpipe_ledger TO \(setup.login);
            GRANT SELECT, INSERT ON starpipe_ledger.applied, starpipe_ledger.applied_audit TO \(setup.login);
            """)
        let ready = try setup.starpipe(["production", "init", "clinic", "--check-only"])
        #expect(ready.status == 0, "\(ready.output)")

        try setup.demo.extract(tables: ["patients", "encounters"])
        let worker = try WorkerProcess(database: setup.demo.pipelineURL, bucket: setup.demo.bucketDirectory,
                                       arguments: ["--until-idle", "--production", "clinic=\(setup.workerProductionURL)"])
        #expect(worker.waitForExit(timeout: 120) == 0, "\(worker.log())")
        let pipeline = try setup.demo.pipeline()
        let production = try setup.production()
        let jobs = try pipeline.query("SELECT job_id, table_name, status, rows_inserted FROM starpipe.job ORDER BY job_id").rows
        #expect(jobs.count == 2 && jobs.allSatisfy { $0[2] == "SUCCESS" }, "\(jobs)")
        let sourcePatients = try setup.demo.count("SELECT count(*) FROM public.patients", on: try setup.demo.source())
        #expect(try setup.demo.count("SELECT count(*) FROM production.patients", on: production) == sourcePatients)
        #expect(try setup.demo.count("SELECT count(*) FROM production.patients", on: pipeline) == 0)
        // Both ledgers agree, job by job.
        for job in jobs {
            let applied = try #require(try production.query(
                "SELECT written, staged_digest, applied_by FROM starpipe_ledger.applied WHERE job_id = $1", [job[0]]).rows.first)
            let recorded = try #require(try pipeline.query(
                "SELECT p.inserted + p.updated, j.staged_digest FROM starpipe.promotion p JOIN starpipe.job j USING (job_id) WHERE job_id = $1",
                [job[0]]).rows.first)
            #expect(applied[0] == recorded[0] && applied[1] == recorded[1])
            #expect(applied[2] == setup.login)
        }
        // A second run of the same snapshot is a DUPLICATE; a changed row is one conflict, applied in production.
        try setup.demo.source().execute(#"UPDATE public.patients SET "CITY" = 'Elsewhere' WHERE "Id" = (SELECT "Id" FROM public.patients ORDER BY "Id" LIMIT 1)"#)
        try setup.demo.extract(tables: ["patients"], runID: "changed")
        #expect(try setup.starpipe(["worker", "--until-idle", "--bucket", "file://\(setup.demo.bucketDirectory)"]).status == 0)
        #expect(try setup.demo.count("SELECT count(*) FROM production.patients WHERE city = 'Elsewhere'", on: production) == 1)
        let changed = try #require(try pipeline.query(
            "SELECT job_id, status FROM starpipe.job WHERE run_id = 'changed'").rows.first)
        #expect(changed[1] == "SUCCESS")
        #expect(try setup.demo.count("SELECT count(*) FROM starpipe.conflict WHERE job_id = \(changed[0]!) AND 'city' = ANY (changed_columns)",
                                     on: pipeline) == 1)
    }

    @Test("SIGKILL right after the production commit: the restarted worker recognises the applied job and applies nothing twice")
    func crashBetweenTheCommits() throws {
        let setup = try Setup()
        #expect(try setup.starpipe(["production", "init", "clinic"], url: setup.productionURL).status == 0)
        try setup.production().execute("""
            GRANT USAGE ON SCHEMA starpipe_ledger TO \(setup.login);
            GRANT SELECT, INSERT ON starpipe_ledger.applied, starpipe_ledger.applied_audit TO \(setup.login);
            """)
        try setup.demo.extract(tables: ["patients"])
        let doomed = try WorkerProcess(database: setup.demo.pipelineURL, bucket: setup.demo.bucketDirectory,
                                       arguments: ["--until-idle", "--lease", "2", "--production", "clinic=\(setup.workerProductionURL)"],
                                       environment: ["STARPIPE_FAILPOINT": "after_production_commit"])
        let status = doomed.waitForExit(timeout: 120)
        #expect(status == 9 || status == 137, "the worker should have been killed: \(String(describing: status)) \(doomed.log())")
        let pipeline = try setup.demo.pipeline()
        let production = try setup.production()
        let job = try #require(try pipeline.query("SELECT job_id, status, stage FROM starpipe.job").rows.first)
        // Production committed, the pipeline did not: the two ledgers disagree until the job is retried.
        #expect(job[1] == "PROCESSING" && job[2] == "validated", "\(job)")
        #expect(try setup.demo.count("SELECT count(*) FROM starpipe_ledger.applied", on: production) == 1)
        let rows = try setup.demo.count("SELECT count(*) FROM production.patients", on: production)
        #expect(rows > 0)
        #expect(try setup.demo.count("SELECT count(DISTINCT txid) FROM production.write_log", on: production) == 1)

        Thread.sleep(forTimeInterval: 2.5)  // the dead worker's lease runs out
        let restarted = try WorkerProcess(database: setup.demo.pipelineURL, bucket: setup.demo.bucketDirectory,
                                          arguments: ["--until-idle", "--production", "clinic=\(setup.workerProductionURL)"])
        #expect(restarted.waitForExit(timeout: 120) == 0, "\(restarted.log())")
        #expect(try pipeline.query("SELECT status FROM starpipe.job WHERE job_id = $1", [job[0]]).scalar == "SUCCESS")
        // Nothing was applied twice: one ledger row, one write statement, the same rows; both ledgers agree.
        #expect(try setup.demo.count("SELECT count(*) FROM starpipe_ledger.applied", on: production) == 1)
        #expect(try setup.demo.count("SELECT count(DISTINCT txid) FROM production.write_log", on: production) == 1)
        #expect(try setup.demo.count("SELECT count(*) FROM production.patients", on: production) == rows)
        let written = try production.query("SELECT written FROM starpipe_ledger.applied WHERE job_id = $1", [job[0]]).scalar
        #expect(try pipeline.query("SELECT inserted::text FROM starpipe.promotion WHERE job_id = $1", [job[0]]).scalar == written)
        #expect(written == String(rows))
        #expect(try pipeline.query("""
            SELECT count(*) FROM starpipe.job_event WHERE job_id = $1 AND event = 'promoted'
            """, [job[0]]).scalar == "1")
    }
}
