import ArgumentParser
import StarpipePostgres

/// `starpipe dlq`: the dead-letter queue.
struct Dlq: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Jobs that used up their attempts (status DEAD): list, inspect, replay.",
        subcommands: [List.self, Inspect.self, Replay.self])

    /// `starpipe dlq list`.
    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List dead-lettered jobs with their last error.")

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let connection = try database.connect()
            let result = try connection.query("""
                SELECT job_id::text AS job, client, table_name AS table, snapshot_date::text AS snapshot, stage,
                       attempts::text, coalesce(to_char(died_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), '') AS died_at_utc,
                       coalesce(last_error, '') AS last_error
                  FROM starpipe.dlq_list()
                """)
            print(TextTable(columns: result.columns, rows: result.rows.map { $0.map { $0 ?? "" } }).render())
        }
    }

    /// `starpipe dlq inspect JOB`.
    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a job's full event history.")

        @Argument(help: "The job id.")
        var job: Int64

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let connection = try database.connect()
            let result = try connection.query("""
                SELECT event_id::text AS event, to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') AS at_utc, actor,
                       coalesce(from_status, '') AS "from", to_status AS "to", stage, event AS what,
                       coalesce(detail::text, '') AS detail
                  FROM starpipe.dlq_inspect($1)
                """, [String(job)])
            print(TextTable(columns: result.columns, rows: result.rows.map { $0.map { $0 ?? "" } }).render())
        }
    }

    /// `starpipe dlq replay JOB`.
    struct Replay: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Requeue a dead job with its attempts reset; it resumes from its stage.")

        @Argument(help: "The job id.")
        var job: Int64

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let connection = try database.connect()
            let status = try connection.query("SELECT starpipe.dlq_replay($1)", [String(job)]).scalar ?? ""
            print("job \(job): \(status)")
        }
    }
}
