import ArgumentParser
import StarpipePostgres

/// `starpipe promote JOB`: manual promotion of a validated job.
struct Promote: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Promote a validated job into production (for mappings with promotion: manual). Idempotent.")

    @Argument(help: "The job id.")
    var job: Int64

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let connection = try database.connect()
        let status = try connection.query("SELECT starpipe.promote($1)", [String(job)]).scalar ?? ""
        print("job \(job): \(status)")
    }
}
