import ArgumentParser
import Logging
import StarpipePostgres
import StarpipeWorker

/// `starpipe promote JOB [--allow-mass-delete]`: manual promotion of a validated job.
struct Promote: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Promote a validated job into production: one awaiting manual promotion, or one the mass-delete guard holds.",
        discussion: """
            A full snapshot that lacks more than the mapping's deletes.max_fraction of the table's rows is BLOCKED \
            by the mass-delete guard (say, after a truncated source table). Check the source first; \
            --allow-mass-delete then promotes it with its deletes, and the promotion records who allowed it. \
            A mapping with production: NAME promotes into that database (--production NAME=URL). \
            Idempotent: a promoted job stays promoted. Needs starpipe_admin.
            """)

    @Argument(help: "The job id.")
    var job: Int64

    @Flag(help: "Let a full snapshot delete more than deletes.max_fraction of the table (audited).")
    var allowMassDelete = false

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var production: ProductionOptions

    @OptionGroup var common: CommonOptions

    func run() throws {
        let connection = try database.connect()
        let status: String
        if let plan = try RemotePromotion.plan(job: job, fence: nil, allowMassDelete: allowMassDelete, on: connection) {
            if plan["status"] as? String == "PROCESSING" {
                let name = plan["production"] as? String ?? ""
                guard let url = try production.databases().url(for: name) else {
                    throw ValidationError("job \(job) promotes into production database \(name): give --production \(name)=URL "
                                          + "or set STARPIPE_PRODUCTION_\(name.uppercased())")
                }
                status = try RemotePromotion(plan: plan, pipeline: connection, productionURL: url,
                                             logger: common.logger("starpipe.promote")).run()
            } else {
                status = plan["status"] as? String ?? ""
            }
        } else {
            let function = allowMassDelete ? "starpipe.promote_allow_mass_delete" : "starpipe.promote"
            status = try connection.query("SELECT \(function)($1)", [String(job)]).scalar ?? ""
        }
        print("job \(job): \(status)")
    }
}
