import ArgumentParser
import StarpipePostgres

/// `starpipe status`: where every job stands.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print jobs: client, table, status, stage, rows, error.")

    @Option(help: "Show one job only.")
    var job: Int64?

    @Flag(help: "Print JSON (one array of job objects) instead of a table.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let connection = try database.connect()
        let filter = job == nil ? "" : "WHERE job_id = $1"
        let parameters: [String?] = job.map { [String($0)] } ?? []
        if json {
            let result = try connection.query("""
                SELECT coalesce(pg_catalog.json_agg(s ORDER BY s.job_id), '[]')::text FROM starpipe.job_status s \(filter)
                """, parameters)
            print(result.scalar ?? "[]")
            return
        }
        let result = try connection.query("""
            SELECT job_id::text AS job, client, table_name AS table, snapshot_date::text AS snapshot, status, stage,
                   coalesce(rows_raw::text, '') AS raw, coalesce(rows_staged::text, '') AS staged,
                   coalesce((rows_inserted + rows_updated)::text, '') AS promoted, coalesce(error, '') AS error
              FROM starpipe.job_status \(filter) ORDER BY job_id
            """, parameters)
        if job != nil && result.rows.isEmpty {
            throw ValidationError("job \(job!) does not exist")
        }
        print(TextTable(columns: result.columns, rows: result.rows.map { $0.map { $0 ?? "" } }).render())
    }
}
