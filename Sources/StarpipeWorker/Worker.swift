import Foundation
import Logging
import StarpipeBucket
import StarpipeCore
import StarpipePostgres

/// The worker: registers manifests found in the bucket, claims jobs and drives each one through
/// raw ingestion, transform, validation and promotion. It keeps no state of its own; the
/// extension's ledger says where every job stands, so it can be killed and restarted at any time.
public final class Worker {
    public let options: WorkerOptions
    public let bucket: any Bucket
    private var logger: Logger
    private let connection: PostgresConnection

    /// Connects to the pipeline database.
    public init(options: WorkerOptions, bucket: any Bucket, logger: Logger) throws {
        self.options = options
        self.bucket = bucket
        self.logger = logger
        self.logger[metadataKey: "starpipe.worker"] = "\(options.workerID)"
        self.connection = try PostgresConnection(url: options.databaseURL, applicationName: "starpipe-worker")
    }

    /// Scans, claims and processes until stopped, or until idle with ``WorkerOptions/untilIdle``.
    public func run() throws {
        while true {
            try discover()
            if try processNext() { continue }
            if options.untilIdle { return }
            Thread.sleep(forTimeInterval: options.pollSeconds)
        }
    }

    /// Registers every manifest in the bucket that the ledger does not know yet; returns how many.
    /// Data files without a manifest are never looked at.
    @discardableResult
    public func discover() throws -> Int {
        let known = Set(try connection.query("SELECT manifest_key FROM starpipe.job").rows.compactMap { $0[0] })
        var registered = 0
        for key in try bucket.list() where !known.contains(key) {
            let manifestKey: ManifestKey
            let manifest: Manifest
            let text: Data
            do {
                guard let parsed = try ManifestKey.parse(key) else { continue }
                manifestKey = parsed
                text = try bucket.read(key)
                manifest = try Manifest.decode(text)
                try manifestKey.check(manifest)
            } catch {
                logger.error("manifest rejected; fix or remove it", metadata: ["starpipe.key": "\(key)", "starpipe.error": "\(error)"])
                continue
            }
            let result = try connection.query(
                "SELECT job_id, status, created FROM starpipe.register($1::jsonb, $2, $3)",
                [String(decoding: text, as: UTF8.self), key, manifestKey.dataKey(dataFile: manifest.dataFile)])
            if result.value(0, "created") == "t" {
                registered += 1
                logger.info("registered", metadata: [
                    "starpipe.job_id": "\(result.value(0, "job_id") ?? "")", "starpipe.status": "\(result.value(0, "status") ?? "")",
                    "starpipe.key": "\(key)",
                ])
            }
        }
        return registered
    }

    /// Claims one job and processes it; returns false when nothing was claimable.
    @discardableResult
    public func processNext() throws -> Bool {
        guard let job = try ClaimedJob.claim(connection, workerID: options.workerID, leaseSeconds: options.leaseSeconds) else {
            return false
        }
        var logger = self.logger
        logger[metadataKey: "starpipe.job_id"] = "\(job.id)"
        logger[metadataKey: "starpipe.client"] = "\(job.client)"
        logger[metadataKey: "starpipe.table"] = "\(job.table)"
        logger.info("claimed", metadata: ["starpipe.stage": "\(job.stage)", "starpipe.fence": "\(job.fence)"])
        do {
            try process(job, logger: logger)
        } catch let error as PostgresError where error.isTransient {
            // The job stays PROCESSING; its lease runs out and a later claim resumes it.
            throw error
        } catch let error as PostgresError where error.sqlState == "SP002" {
            logger.warning("fenced out: another worker holds this job now")
        } catch {
            logger.error("job failed", metadata: ["starpipe.error": "\(error)"])
            try fail(job, reason: "\(error)")
        }
        return true
    }

    private func process(_ job: ClaimedJob, logger: Logger) throws {
        if job.stage == "registered" {
            let rows: Int64
            do {
                rows = try RawIngestion(job: job, bucket: bucket, connection: connection, chunkSize: options.chunkSize).run()
            } catch let error as StarpipeError {
                logger.error("raw ingestion failed", metadata: ["starpipe.error": "\(error)"])
                try fail(job, reason: error.message)
                return
            } catch let error as PostgresError where error.isStarpipeError && error.sqlState != "SP002" {
                logger.error("raw ingestion refused", metadata: ["starpipe.error": "\(error)"])
                try fail(job, reason: error.description)
                return
            }
            logger.info("raw version loaded", metadata: ["starpipe.rows": "\(rows)"])
        }
        for step in ["transform", "validate", "promote"] {
            let status = try connection.query("SELECT starpipe.\(step)($1, $2)", job.fenced).scalar ?? ""
            logger.info("\(step) done", metadata: ["starpipe.status": "\(status)"])
            guard status == "PROCESSING" else { return }
        }
    }

    private func fail(_ job: ClaimedJob, reason: String) throws {
        try connection.query("SELECT starpipe.fail($1, $2, $3)", job.fenced + [reason])
    }
}
