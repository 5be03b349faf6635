import ArgumentParser
import StarpipePostgres
import StarpipeWorker

/// `starpipe production init NAME`: prepare a separate production database for promotions.
struct Production: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage the separate production databases mappings promote into (production: NAME).",
        subcommands: [Init.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create starpipe's ledger in a production database and check that promotions into it can run.",
            discussion: """
                Creates the schema starpipe_ledger with the tables applied and applied_audit (IF NOT EXISTS; run it \
                as a login that may create a schema there, e.g. the tables' owner, then GRANT SELECT, INSERT ON \
                both to the worker's login if it is another), then checks, as the given login, every target \
                table the mappings in force send there: that it exists with the mapped columns and types of the \
                pipeline's copy, has a unique index on the conflict key, and that the login holds SELECT, INSERT, \
                UPDATE (and DELETE for hard deletes) on it and can write the ledger. Needs no superuser and no \
                extension in production. Exits 1 when something is missing, listing each problem.
                """)

        @Argument(help: "The production name the mappings use.")
        var name: String

        @Flag(help: "Only check; do not create the ledger.")
        var checkOnly = false

        @OptionGroup var database: DatabaseOptions

        @OptionGroup var production: ProductionOptions

        func run() throws {
            let pipeline = try database.connect()
            guard let url = try production.databases().url(for: name) else {
                throw ValidationError("give --production \(name)=URL or set STARPIPE_PRODUCTION_\(name.uppercased())")
            }
            let target = try PostgresConnection(url: url, applicationName: "starpipe-cli", settings: PostgresConnection.pipelineSettings)
            if !checkOnly {
                try target.execute(try pipeline.query("SELECT starpipe.production_ledger_sql()").scalar ?? "")
                print("ledger starpipe_ledger.applied and starpipe_ledger.applied_audit ready")
            }
            let check = try pipeline.query("SELECT starpipe.production_check_sql($1)", [name]).scalar ?? ""
            let problems = try target.query(check).rows
            if problems.isEmpty {
                print("production \(name): ready")
                return
            }
            print(TextTable(columns: ["object", "problem"], rows: problems.map { [$0[0] ?? "", $0[1] ?? ""] }).render())
            throw ExitCode(1)
        }
    }
}
