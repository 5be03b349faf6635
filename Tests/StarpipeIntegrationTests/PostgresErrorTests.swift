import StarpipePostgres
import Testing

/// What a server error may show: never a value, whatever raised it.
@Suite("Postgres errors")
struct PostgresErrorTests {
    @Test("a trigger-style RAISE quoting a value shows only its SQLSTATE; starpipe's and object errors show their text")
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
        do {
            try connection.execute("SELECT * FROM no_such_table")
            Issue.record("missing table found")
        } catch {
            #expect(error.description.contains("no_such_table"))
        }
    }
}
