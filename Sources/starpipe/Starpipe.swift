import ArgumentParser
import Logging
import StarpipePostgres
import StarpipeWorker

/// The `starpipe` command: extractor, worker and operator tools of the starpipe pipeline (started by ``Entry``).
struct Starpipe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "starpipe",
        abstract: "Move a client's database into production Postgres: extract, ingest, transform, validate, promote.",
        version: "0.1.0",
        subcommands: [Extract.self, Work.self, Mapping.self, Status.self, Trace.self, Promote.self, Verify.self, Retry.self, Resync.self,
                      Dlq.self, Production.self, Rejects.self])
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. Env STARPIPE_LOG_LEVEL; defaults to info.")
    var logLevel: String?

    @Option(help: "Log format: text (human-readable lines) or json (one object per line with job_id, client, table, stage). Env STARPIPE_LOG_FORMAT; defaults to text.")
    var logFormat: String?

    func validate() throws {
        guard ["text", "json"].contains(logFormat ?? Environment.value("STARPIPE_LOG_FORMAT") ?? "text") else {
            throw ValidationError("--log-format is text or json")
        }
    }

    func logger(_ label: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel ?? Environment.value("STARPIPE_LOG_LEVEL") ?? "info") ?? .info
        LoggingBootstrap.once(json: (logFormat ?? Environment.value("STARPIPE_LOG_FORMAT")) == "json")
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

/// Options of subcommands that talk to the pipeline database.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "Pipeline database URL (libpq). Env STARPIPE_DATABASE_URL.")
    var database: String?

    func url() throws -> String {
        guard let url = database ?? Environment.value("STARPIPE_DATABASE_URL") else {
            throw ValidationError("give --database URL or set STARPIPE_DATABASE_URL")
        }
        return url
    }

    /// A connection to the pipeline database with the pipeline's pinned session settings.
    func connect() throws -> PostgresConnection {
        try PostgresConnection(url: try url(), applicationName: "starpipe-cli", settings: PostgresConnection.pipelineSettings)
    }
}

/// Options of subcommands that promote into separate production databases.
struct ProductionOptions: ParsableArguments {
    @Option(name: .customLong("production"),
            help: "A production database a mapping names (production: NAME), as NAME=URL; repeatable. Env STARPIPE_PRODUCTION_<NAME>.")
    var entries: [String] = []

    func databases() throws -> ProductionDatabases {
        try ProductionDatabases(entries)
    }
}
