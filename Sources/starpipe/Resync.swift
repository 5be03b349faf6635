import ArgumentParser
import StarpipePostgres

/// `starpipe resync JOB`: rebuild a job's staging table from production's current shape.
struct Resync: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Requeue a job BLOCKED or FAILED past transform so it is transformed again from production's current shape.",
        discussion: """
            For a job blocked by production_changed (a column or CHECK constraint of its production table changed since \
            it was staged): its staging table is rebuilt at the next transform. Needs starpipe_admin.
            """)

    @Argument(help: "The job id.")
    var job: Int64

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let connection = try database.connect()
        let status = try connection.query("SELECT starpipe.resync_staging($1)", [String(job)]).scalar ?? ""
        print("job \(job): \(status), staging is rebuilt at its next transform")
    }
}
