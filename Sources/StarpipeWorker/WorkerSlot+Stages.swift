import Foundation
import Logging
import StarpipeCore
import StarpipePostgres

/// The stage driver: a claimed job goes from its stage through raw ingestion, transform,
/// validation and promotion, each step a call to the extension.
extension WorkerSlot {
    /// The extension's steps after raw ingestion, in order; each returns the job's status.
    private static let steps = ["transform", "validate", "promote"]

    /// Drives `job` from its stage as far as it goes. Throws the error that stopped it, for the
    /// settlement, which runs once the lease keeper and deadline watcher have stopped; that includes a
    /// load refused for its content, so no cancel request can land on the call that fails the job.
    func drive(_ job: ClaimedJob, keeper: LeaseKeeper, logger: Logger) throws {
        let clock = ContinuousClock()
        if job.stage == .registered {
            var logger = logger
            logger[metadataKey: "starpipe.stage"] = "raw"
            let started = clock.now
            // Timed whether the stage succeeds or fails: a slow failure is what an operator looks for.
            defer { worker.metrics?.recordStage("raw", client: job.client, table: job.table, duration: clock.now - started) }
            let rows = try ingest(job, keeper: keeper, logger: logger)
            logger.info("raw version loaded", metadata: ["starpipe.rows": "\(rows)"])
        }
        for step in Self.steps {
            if worker.stop.mustAbort { throw StopDeadlineExceeded() }
            var logger = logger
            logger[metadataKey: "starpipe.stage"] = "\(step)"
            let started = clock.now
            defer { worker.metrics?.recordStage(step, client: job.client, table: job.table, duration: clock.now - started) }
            let status: String
            if step == "promote", let plan = try RemotePromotion.plan(job: job.id, fence: job.fence, on: try database()) {
                status = try promoteRemotely(job, plan: plan, logger: logger)
            } else {
                status = try query("SELECT starpipe.\(step)($1, $2)", job.fenced).scalar ?? ""
            }
            logger.info("\(step) done", metadata: ["starpipe.status": "\(status)"])
            guard status == JobStatus.processing.rawValue else { return }
        }
    }

    /// Promotes `job` into the separate production database its mapping names; returns the status after.
    private func promoteRemotely(_ job: ClaimedJob, plan: [String: Any], logger: Logger) throws -> String {
        guard plan["status"] as? String == JobStatus.processing.rawValue else {
            return plan["status"] as? String ?? ""
        }
        let name = plan["production"] as? String ?? ""
        guard let url = options.production.url(for: name) else {
            throw StarpipeError(.configuration, "job \(job.id) promotes into production database \(name), which this worker does not know "
                                + "(give --production \(name)=URL or set STARPIPE_PRODUCTION_\(name.uppercased()))")
        }
        return try RemotePromotion(plan: plan, pipeline: try database(), productionURL: url, logger: logger).run()
    }

    /// Loads the job's data file into a new raw version, retrying transient failures; returns the rows loaded.
    private func ingest(_ job: ClaimedJob, keeper: LeaseKeeper, logger: Logger) throws -> Int64 {
        var attempt = 0
        return try options.retry.run("ingest \(job.dataKey)", logger: logger, before: { _ in self.connection = nil }) {
            attempt += 1
            // A COMMIT whose reply was lost may have landed: then the job moved on and we go on with it.
            if attempt > 1, let loaded = try alreadyLoaded(job) { return loaded }
            return try RawIngestion(job: job, bucket: bucket, connection: try database(), chunkSize: options.chunkSize,
                                    allowBinary: options.binaryCopy,
                                    abandon: {
                                        if keeper.isFencedOut { return FencedOut() }
                                        return self.worker.stop.mustAbort ? StopDeadlineExceeded() : nil
                                    },
                                    progress: { keeper.report(progress: $0) }).run()
        }
    }

    /// The raw row count when this holder's load of `job` already committed, else nil.
    private func alreadyLoaded(_ job: ClaimedJob) throws -> Int64? {
        let row = try query("SELECT stage, fence, rows_raw FROM starpipe.job WHERE job_id = $1", [String(job.id)]).rows.first
        guard let row, row[1] == String(job.fence), row[0] != JobStage.registered.rawValue else { return nil }
        return Int64(row[2] ?? "0")
    }
}
