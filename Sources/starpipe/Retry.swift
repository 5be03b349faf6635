import ArgumentParser
import StarpipePostgres

/// `starpipe retry JOB`: requeue a job on purpose.
struct Retry: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Requeue a FAILED, BLOCKED, DEAD or DUPLICATE job, or one kept in raw only (say, after adding its mapping).",
        discussion: """
            The job resumes from its recorded stage with a fresh series of attempts: a DUPLICATE is loaded from its \
            file, a raw-only job is transformed from its raw version with the mapping in force now. Needs starpipe_admin.
            """)

    @Argument(help: "The job id.")
    var job: Int64

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let connection = try database.connect()
        let status = try connection.query("SELECT starpipe.retry($1)", [String(job)]).scalar ?? ""
        print("job \(job): \(status)")
    }
}
