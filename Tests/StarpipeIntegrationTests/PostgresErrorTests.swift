import StarpipePostgres
import Testing

/// What a server error may show: never a value, whatever raised it.
@Suite("Postgres errors")
struct PostgresErrorTests {
    @Test("a trigger-style RAISE quoting a value shows only its SQLSTATE; starpipe's, object and Postgres's own data errors show their text, never a value")
    func valuesNeverShown() throws {
        let connection = try PostgresConnection(url: TestServer.url(database: "postgres"))
        do {
            try connection.execute("DO $$ BEGIN RAISE EXCEPTION 'bad ssn %', '999-12-3456'; END $$")
            Issue.record("RAISE did not raise")
        } catch {
            #expect(!error.description.contains("999-12-3456"))
            #expect(error.description.contains("P0001"))
            #expect(error.debugDescription.contains("999-12-3456"), "kept for local debugging only")
        }
        do {
            try connection.execute("SELECT 'PHI-VALUE'::uuid")
            Issue.record("bad uuid accepted")
        } catch {
            #expect(!error.description.contains("PHI-VALUE"))
        }
        // Postgres's own data errors show their message, cut before the value they quote; DETAIL (the row) never.
        try connection.execute("CREATE TEMP TABLE people (id integer PRIMARY KEY, ssn text NOT NULL)")
        try connection.execute("INSERT INTO people VALUES (1, 'PHI-SSN-1')")
        try connection.execute("CREATE TEMP TABLE codes (code varchar(3))")
        let shown: [(sql: String, message: String)] = [
            ("INSERT INTO people VALUES (1, 'PHI-SSN-2')", #"duplicate key value violates unique constraint "people_pkey" (SQLSTATE 23505)"#),
            ("INSERT INTO people VALUES (2, NULL)", #"null value in column "ssn" of relation "people" violates not-null constraint (SQLSTATE 23502)"#),
            ("SELECT 'PHI-VALUE'::uuid", "invalid input syntax for type uuid (SQLSTATE 22P02)"),
            ("SELECT 'PHI-VALUE'::integer", "invalid input syntax for type integer (SQLSTATE 22P02)"),
            ("INSERT INTO codes VALUES ('PHI-VALUE')", "value too long for type character varying(3) (SQLSTATE 22001)"),
            ("SELECT 1 / 0", "division by zero (SQLSTATE 22012)"),
        ]
        for (sql, message) in shown {
            do {
                try connection.execute(sql)
                Issue.record("\(sql) succeeded")
            } catch {
                #expect(error.description == "statement: \(message)", "\(sql)")
                #expect(!error.description.contains("PHI-"), "\(sql)")
            }
        }
        // Anything else in those classes, such as a trigger's RAISE with a data SQLSTATE, stays its SQLSTATE.
        do {
            try connection.execute("DO $$ BEGIN RAISE EXCEPTION 'ssn % is taken', 'PHI-SSN-3' USING ERRCODE = 'unique_violation'; END $$")
            Issue.record("RAISE did not raise")
        } catch {
            #expect(error.description == "statement: a value was rejected by the database (SQLSTATE 23505)", "\(error.description)")
        }
        do {
            try connection.execute("SELECT * FROM no_such_table")
            Issue.record("missing table found")
        } catch {
            #expect(error.description.contains("no_such_table"))
        }
    }

    @Test("the CLI prints the extension's own error text whatever its SQLSTATE (P0002: no such job), never only the code")
    func extensionErrorsOnTheCLI() throws {
        let url = try TestServer.createDatabase("cli_errors")
        try PostgresConnection(url: url).execute("CREATE EXTENSION starpipe")
        for command in [["retry", "999999"], ["promote", "999999"], ["dlq", "replay", "999999"]] {
            let result = try WorkerProcess.cli(command + ["--database", url])
            #expect(result.status != 0, "\(command)")
            #expect(result.output.contains("job 999999 does not exist (SQLSTATE P0002)"), "\(command): \(result.output)")
        }
        // The same code raised by anything but the extension's _raise keeps to its SQLSTATE.
        let connection = try PostgresConnection(url: url)
        do {
            try connection.execute("DO $$ BEGIN RAISE EXCEPTION 'patient PHI-MRN-7 not found' USING ERRCODE = 'no_data_found'; END $$")
            Issue.record("RAISE did not raise")
        } catch {
            #expect(error.description == "statement: the database raised an error (SQLSTATE P0002)", "\(error.description)")
        }
    }
}
