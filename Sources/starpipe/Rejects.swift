import ArgumentParser
import StarpipePostgres

/// `starpipe rejects`: rows transform quarantined (starpipe.reject), and their replay after a mapping fix.
struct Rejects: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rejects",
        abstract: "Rejected rows: list them grouped by rule and column, or replay a job's after a mapping fix.",
        subcommands: [List.self, Replay.self])

    /// `starpipe rejects list [--job J]`.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List rejects grouped by job, column, rule and SQLSTATE, with counts and sample source rows (never values).")

        @Option(help: "Only this job's rejects.")
        var job: Int64?

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let connection = try database.connect()
            let result = try connection.query("""
                SELECT job_id::text AS job, coalesce(target_column, '') AS column, rule, sqlstate,
                       coalesce(constraint_name, '') AS constraint, rows::text,
                       array_to_string(sample_source_rows, ', ') AS sample_source_rows,
                       CASE WHEN resolved THEN 'resolved' ELSE 'open' END AS state
                  FROM starpipe.rejects($1::bigint)
                """, [job.map(String.init)])
            print(TextTable(columns: result.columns, rows: result.rows.map { $0.map { $0 ?? "" } }).render())
        }
    }

    /// `starpipe rejects replay JOB`.
    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue a promoted job's unresolved rejected rows, from raw, as a new job the worker transforms with the current mapping, gates and promotes.")

        @Argument(help: "The job whose rejects to replay.")
        var job: Int64

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let connection = try database.connect()
            if let replay = try connection.query("SELECT starpipe.replay_rejects($1)::text", [String(job)]).scalar {
                print("job \(job): rejected rows queued as job \(replay)")
            } else {
                print("job \(job): no unresolved rejects; nothing to replay")
            }
        }
    }
}
