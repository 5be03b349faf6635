import ArgumentParser
import Dispatch
import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipeExtract
import Synchronization

/// `starpipe extract`: read a client's Postgres, MySQL/MariaDB or SQLite database into the bucket.
struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Extract tables of a client's Postgres, MySQL/MariaDB or SQLite database into the bucket (data.json, then manifest.json).")

    @Option(help: "Client database: postgresql://USER@HOST[:PORT]/DB (libpq, sslmode= etc.), mysql://USER@HOST[:PORT]/DB[?sslmode=disable|require|verify-full&sslrootcert=CA.pem] (MySQL or MariaDB), or sqlite:///PATH/TO/FILE.db (opened read-only). The password: in the URL, else --password-file, --password-prompt, PGPASSWORD or MYSQL_PWD, else ~/.pgpass (Postgres). Env STARPIPE_SOURCE_URL.")
    var source: String?

    @Option(help: "Client name used in bucket keys (lower-case letters, digits, _).")
    var client: String?

    @Option(help: "Bucket URL (not needed with --dry-run): file:///var/starpipe/bucket, or s3://BUCKET/PREFIX?region=R&endpoint=URL&path_style=true|false (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials). Env STARPIPE_BUCKET.")
    var bucket: String?

    @Option(help: "Source schema (Postgres only; MySQL reads the URL's database, SQLite its main schema). Defaults to public.")
    var schema: String?

    @Option(help: "Comma-separated tables to extract. Defaults to every table of the schema.")
    var tables: String?

    @Option(help: "Rows per keyset page. Defaults to 10000.")
    var pageSize: Int?

    @Option(help: "Snapshot date YYYY-MM-DD. Defaults to today (UTC).")
    var date: String?

    @Option(help: "Run id (letters, digits, . _ -). Defaults to a timestamp plus random suffix.")
    var runId: String?

    @Option(help: "File whose first line is the source password, readable by its owner only (chmod 600). Used when the URL holds no password.")
    var passwordFile: String?

    @Flag(help: "Ask for the source password on the terminal, without echo. Used when the URL holds no password.")
    var passwordPrompt = false

    @Option(help: "Times a transient failure of the source is tried again: connecting (refused, timed out, too many connections), a page that fails without losing the connection (its table's lock not granted in time), and a table whose connection was lost (read again from its start in a new snapshot). Waits are drawn from 0 … min(30 s, 0.5 s × 2^(n-1)) (full jitter). Defaults to 5.")
    var retries: Int?

    @Option(help: "Seconds a page waits for its table's lock (Postgres lock_timeout; a table being altered) before it fails and is tried again, instead of holding up the client's sessions queued behind it. Defaults to 10.")
    var lockTimeout: Double?

    @Flag(help: "Connect and list the tables and columns a run would extract, with their manifest types, and every table whose types or values cannot be carried; write nothing. Exits 1 when some table cannot be extracted.")
    var dryRun = false

    @Option(help: "YAML config file with any of the settings above (source, password_file, client, bucket, schema, tables, page_size, log_level, log_format), mode: full|incremental and the incremental section (per table the cursor column or columns to coalesce, lookback, skew_margin, null_cursor, state). Flags given here override it; it overrides the environment. Never holds a password (password_file instead). See examples/starpipe-extract.yml.")
    var config: String?

    @Flag(help: "Read the tables that have a cursor in the config's incremental section from their last high watermark minus the lookback (mode: incremental); the others in full. Needs --config.")
    var incremental = false

    @Flag(help: "Read every table in full even when the config says mode: incremental (the periodic snapshot that carries deletes); the watermarks still advance.")
    var full = false

    @OptionGroup var common: CommonOptions

    func run() throws {
        if incremental && full { throw ValidationError("give --incremental or --full, not both") }
        let file = try config.map { try ExtractConfig(contentsOf: $0) }
        if incremental && file?.incremental == nil {
            throw ValidationError("--incremental needs --config FILE with an incremental section naming each table's cursor")
        }
        var common = common
        common.logLevel = common.logLevel ?? file?.logLevel
        common.logFormat = common.logFormat ?? file?.logFormat
        guard let client = client ?? file?.client else {
            throw ValidationError("give --client NAME (or client: in the config file)")
        }
        let passwordFile = passwordFile ?? (passwordPrompt ? nil : file?.passwordFile)
        guard let sourceURL = source ?? file?.source ?? Environment.value("STARPIPE_SOURCE_URL") else {
            throw ValidationError("give --source URL, source: in the config file, or set STARPIPE_SOURCE_URL")
        }
        // Before anything connects: no core dumps, the URL's password masked in `ps`, PGPASSWORD and MYSQL_PWD moved
        // from the environment into memory.
        let isMySQL = ["mysql:", "mariadb:"].contains { sourceURL.lowercased().hasPrefix($0) }
        let fromEnvironment = SecretHygiene.protect(environment: isMySQL ? ["MYSQL_PWD", "PGPASSWORD"] : ["PGPASSWORD", "MYSQL_PWD"])
        if passwordFile != nil && passwordPrompt {
            throw ValidationError("give --password-file or --password-prompt, not both")
        }
        let password = try passwordFile.map { try SourcePassword.read(file: $0) }
            ?? (passwordPrompt ? try SourcePassword.prompt("Password for the source database: ") : nil)
            ?? fromEnvironment
        var snapshot: SnapshotDate?
        if let date {
            guard let parsed = SnapshotDate(iso: date) else { throw ValidationError("--date must be YYYY-MM-DD") }
            snapshot = parsed
        }
        var incrementalOptions = file?.incremental
        if incremental { incrementalOptions?.enabled = true }
        if full { incrementalOptions?.enabled = false }
        var options = ExtractOptions(
            sourceURL: sourceURL, client: client, schema: schema ?? file?.schema ?? "public",
            tables: tables.map { $0.split(separator: ",").map { String($0).trimmingWhitespace() } } ?? file?.tables,
            pageSize: pageSize ?? file?.pageSize ?? 10_000, snapshotDate: snapshot, runID: runId, password: password,
            incremental: dryRun ? nil : incrementalOptions)
        let retries = retries ?? file?.retries ?? ExtractOptions.defaultRetry.attempts - 1
        let lockTimeout = lockTimeout ?? file?.lockTimeout ?? 10
        guard retries >= 0, lockTimeout > 0 else { throw ValidationError("--retries must be 0 or more and --lock-timeout positive") }
        options.retry.attempts = retries + 1
        options.lockTimeout = lockTimeout
        if dryRun {
            let report = try Extractor.describe(options, logger: common.logger("starpipe.extract"))
            print(TextTable(columns: ["table", "column", "type", "source type", "nullable", "key"], rows: report.tables.flatMap { table in
                table.columns.map { column in
                    [table.name, column.name, column.type, column.sourceType ?? "", column.nullable ? "yes" : "no",
                     table.primaryKey.firstIndex(of: column.name).map { String($0 + 1) } ?? ""]
                }
            }).render())
            let refused = report.tables.filter { $0.problem != nil }
            for table in refused { print("cannot extract \(table.name): \(table.problem!)") }
            print("\(report.kind) source: \(report.tables.count - refused.count) of \(report.tables.count) tables can be extracted")
            if !refused.isEmpty { throw ExitCode(1) }
            return
        }
        guard let bucketURL = bucket ?? file?.bucket ?? Environment.value("STARPIPE_BUCKET") else {
            throw ValidationError("give --bucket URL, bucket: in the config file, or set STARPIPE_BUCKET")
        }
        let logger = common.logger("starpipe.extract")
        var extractor = Extractor(options: options, bucket: try BucketFactory.open(bucketURL), logger: logger)
        let display = ProgressDisplay(logger: logger)
        extractor.progress = { display.report($0) }
        // SIGTERM or SIGINT stops the run between two rows: the upload in progress is aborted, no manifest follows.
        let cancelled = CancellationFlag()
        let sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { cancelled.set() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        extractor.isCancelled = { cancelled.isSet }
        let manifests = try extractor.run()
        print("extracted \(manifests.count) tables for client \(client), run \(options.runID), snapshot \(options.snapshotDate)")
        print(TextTable(columns: ["table", "mode", "rows", "bytes", "sha256", "high watermark"], rows: manifests.map {
            [$0.table, $0.mode.rawValue, String($0.rowCount), String($0.byteCount), $0.sha256, $0.incremental?.highWatermark ?? ""]
        }).render())
    }
}

/// Set once from a signal handler, read for every row.
final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

extension String {
    func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
