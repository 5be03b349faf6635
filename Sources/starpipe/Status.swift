import ArgumentParser
import Foundation
import StarpipePostgres

/// `starpipe status`: where every job stands, filtered by client, table, status and age, once or refreshed.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print jobs: client, table, status, stage, rows, error, and how long ago each last changed.",
        discussion: """
            Filters combine (AND). --since takes a duration (90s, 15m, 2h, 3d: jobs changed that recently) or a \
            timestamp (2026-12-01T08:00:00Z). --watch reprints every --interval seconds until interrupted, or \
            --refreshes times; on a terminal it clears the screen first.
            """)

    /// The statuses a job can have (starpipe.job's CHECK constraint).
    static let statuses = ["PENDING", "PROCESSING", "SUCCESS", "FAILED", "DUPLICATE", "BLOCKED", "DEAD"]

    @Option(help: "Show one job only.")
    var job: Int64?

    @Option(help: "Only jobs of this client.")
    var client: String?

    @Option(help: "Only jobs of this source table.")
    var table: String?

    @Option(help: "Only jobs in these statuses, comma-separated (PENDING, PROCESSING, SUCCESS, FAILED, DUPLICATE, BLOCKED, DEAD).")
    var status: String?

    @Option(help: "Only jobs that changed since then: a duration back from now (90s, 15m, 2h, 3d) or a timestamp.")
    var since: String?

    @Flag(help: "Print JSON (one array of job objects) instead of a table.")
    var json = false

    @Flag(help: "Reprint every --interval seconds until interrupted.")
    var watch = false

    @Option(help: "With --watch: seconds between refreshes. Defaults to 2.")
    var interval: Double = 2

    @Option(help: "With --watch: stop after this many prints. Defaults to no limit.")
    var refreshes: Int?

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        if let status {
            let unknown = status.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).uppercased() }
                .filter { !Self.statuses.contains($0) }
            guard unknown.isEmpty else { throw ValidationError("unknown status \(unknown.joined(separator: ", "))") }
        }
        if let since { _ = try Self.sinceParameter(since) }
        guard interval > 0 else { throw ValidationError("--interval must be positive") }
        guard (refreshes ?? 1) >= 1 else { throw ValidationError("--refreshes must be at least 1") }
    }

    /// A duration (`90s`, `15m`, `2h`, `3d`) as seconds, or anything else as a timestamp Postgres parses.
    static func sinceParameter(_ text: String) throws -> (seconds: String?, timestamp: String?) {
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        if let unit = text.last, let factor = units[unit], let amount = Double(text.dropLast()), amount >= 0 {
            return (String(amount * factor), nil)
        }
        guard text.first?.isNumber == true else {
            throw ValidationError("--since takes a duration (90s, 15m, 2h, 3d) or a timestamp")
        }
        return (nil, text)
    }

    func run() throws {
        let connection = try database.connect()
        let window = try since.map(Self.sinceParameter)
        let statuses = status.map { "{" + $0.uppercased().split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            .joined(separator: ",") + "}" }
        let parameters: [String?] = [job.map(String.init), client, table, statuses, window?.seconds, window?.timestamp]
        let filter = """
            WHERE ($1::bigint IS NULL OR job_id = $1::bigint) AND ($2::text IS NULL OR client = $2)
              AND ($3::text IS NULL OR table_name = $3) AND ($4::text[] IS NULL OR status = ANY ($4::text[]))
              AND ($5::float8 IS NULL OR updated_at >= pg_catalog.now() - pg_catalog.make_interval(secs => $5::float8))
              AND ($6::timestamptz IS NULL OR updated_at >= $6::timestamptz)
            """
        let terminal = isatty(STDOUT_FILENO) == 1
        var printed = 0
        while true {
            let text = try render(connection, filter: filter, parameters: parameters)
            // Written whole and unbuffered, so a watcher (or a pipe) sees each refresh at once.
            let clear = watch && terminal ? "\u{1B}[H\u{1B}[2J" : ""
            printed += 1
            let last = !watch || printed >= (refreshes ?? Int.max)
            FileHandle.standardOutput.write(Data((clear + text + "\n" + (last || terminal ? "" : "\n")).utf8))
            if last { return }
            Thread.sleep(forTimeInterval: interval)
        }
    }

    private func render(_ connection: PostgresConnection, filter: String, parameters: [String?]) throws -> String {
        if json {
            let result = try connection.query("""
                SELECT coalesce(pg_catalog.json_agg(s ORDER BY s.job_id), '[]')::text FROM starpipe.job_status s \(filter)
                """, parameters)
            return result.scalar ?? "[]"
        }
        let result = try connection.query("""
            SELECT job_id::text AS job, client, table_name AS table, snapshot_date::text AS snapshot, status, stage,
                   coalesce(rows_raw::text, '') AS raw, coalesce(rows_staged::text, '') AS staged,
                   coalesce((rows_inserted + rows_updated)::text, '') AS promoted,
                   pg_catalog.date_trunc('second', pg_catalog.now() - updated_at)::text AS age, coalesce(error, '') AS error
              FROM starpipe.job_status \(filter) ORDER BY job_id
            """, parameters)
        if let job, result.rows.isEmpty {
            throw ValidationError("job \(job) does not exist")
        }
        return TextTable(columns: result.columns, rows: result.rows.map { $0.map { $0 ?? "" } }).render()
    }
}
