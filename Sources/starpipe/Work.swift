import ArgumentParser
import StarpipeBucket
import StarpipeWorker

/// `starpipe worker`: register, claim and process jobs.
struct Work: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Register manifests from the bucket and drive each job to production.")

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Bucket URL, e.g. file:///var/starpipe/bucket. Env STARPIPE_BUCKET.")
    var bucket: String?

    @Flag(help: "Exit when there is nothing left to do instead of polling.")
    var untilIdle = false

    @Option(help: "Seconds between bucket scans when idle. Defaults to 2.")
    var pollInterval: Double = 2

    @Option(help: "Lease (visibility timeout) of a claimed job in seconds. Defaults to 300.")
    var lease: Int = 300

    @Option(help: "Name of this worker in the ledger. Defaults to host:pid.")
    var workerId: String?

    @OptionGroup var common: CommonOptions

    func run() throws {
        guard let bucketURL = bucket ?? Environment.value("STARPIPE_BUCKET") else {
            throw ValidationError("give --bucket URL or set STARPIPE_BUCKET")
        }
        let options = WorkerOptions(databaseURL: try database.url(), workerID: workerId, leaseSeconds: lease,
                                    pollSeconds: pollInterval, untilIdle: untilIdle)
        let worker = try Worker(options: options, bucket: try BucketFactory.open(bucketURL), logger: common.logger("starpipe.worker"))
        try worker.run()
    }
}
