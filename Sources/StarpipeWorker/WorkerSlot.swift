import Foundation
import Logging
import StarpipeBucket
import StarpipeCore
import StarpipePostgres
import StarpipeRedis
import Synchronization

/// One thread of a worker: its own connections, one job at a time.
final class WorkerSlot: @unchecked Sendable {
    let index: Int
    private let worker: Worker
    private let logger: Logger
    private var connection: PostgresConnection?
    private var redis: RedisConnection?
    private var listening = false
    /// Cancels the statement running on ``connection``; replaced on every reconnect, read by the lease keeper.
    private let canceller = Mutex<PostgresCanceller?>(nil)

    private var options: WorkerOptions { worker.options }
    private var bucket: any Bucket { worker.bucket }

    init(index: Int, worker: Worker, logger: Logger) {
        self.index = index
        self.worker = worker
        var logger = logger
        logger[metadataKey: "starpipe.slot"] = "\(index)"
        self.logger = logger
    }

    /// Claims and processes until stopped, or until nothing is claimable with `untilIdle`.
    func loop() throws {
        while !worker.stop.isStopping {
            if index == 0 {
                try discover()
            }
            if try processNext() { continue }
            if options.untilIdle { return }
            do {
                try idle()
            } catch where ErrorClass.of(error) == .transient {
                // The database went away while we waited; reconnect on the next round.
                logger.warning("idle wait interrupted; reconnecting", metadata: ["starpipe.error": "\(error)"])
                connection = nil
                worker.stop.sleep(min(1, options.pollSeconds))
            }
        }
    }

    /// Waits for work without hard polling: woken within milliseconds by the NOTIFY that register
    /// sends, otherwise at the next backoff or lease expiry, and at most after the poll interval
    /// (which is also when slot 0 scans the bucket again).
    private func idle() throws {
        let connection = try database()
        if !listening {
            try connection.listen("starpipe_job")
            listening = true
        }
        var wait = options.pollSeconds
        if let next = try connection.query("SELECT extract(epoch FROM starpipe.next_claimable_at() - pg_catalog.now())").scalar,
           let seconds = Double(next) {
            wait = min(wait, max(0.01, seconds))
        }
        let end = Date().addingTimeInterval(wait)
        while !worker.stop.isStopping, Date() < end {
            if try !connection.waitForNotifications(timeout: min(0.1, max(0, end.timeIntervalSinceNow))).isEmpty { return }
        }
    }

    // MARK: Database access with retries

    /// The slot's connection, (re)connecting with backoff.
    private func database() throws -> PostgresConnection {
        if let connection, connection.isHealthy { return connection }
        connection = nil
        listening = false
        let made = try options.retry.run("connect to the pipeline database", logger: logger) {
            try PostgresConnection(url: options.databaseURL, applicationName: "starpipe-worker")
        }
        connection = made
        // Made here, on the slot's thread; the lease keeper uses it from its own.
        let current = made.makeCanceller()
        canceller.withLock { $0 = current }
        return made
    }

    /// Runs one statement, retrying transient failures on a fresh connection.
    @discardableResult
    private func query(_ sql: String, _ parameters: [String?] = []) throws -> PostgresResult {
        try options.retry.run("query", logger: logger, before: { _ in self.connection = nil }) {
            try database().query(sql, parameters)
        }
    }

    // MARK: Discovery

    /// Registers every manifest in the bucket that the ledger does not know yet; returns how many.
    /// Data files without a manifest are never looked at.
    @discardableResult
    func discover() throws -> Int {
        let known = Set(try query("SELECT manifest_key FROM starpipe.job").rows.compactMap { $0[0] })
        let keys = try options.retry.run("list the bucket", logger: logger) { try bucket.list() }
        var registered = 0
        for key in keys where !known.contains(key) {
            let manifestKey: ManifestKey
            let manifest: Manifest
            let text: Data
            do {
                guard let parsed = try ManifestKey.parse(key) else { continue }
                manifestKey = parsed
                text = try options.retry.run("read a manifest", logger: logger) { try bucket.read(key) }
                manifest = try Manifest.decode(text)
                try manifestKey.check(manifest)
            } catch {
                logger.error("manifest rejected; fix or remove it", metadata: ["starpipe.key": "\(key)", "starpipe.error": "\(error)"])
                continue
            }
            let result: PostgresResult
            do {
                result = try query(
                    "SELECT job_id, status, created FROM starpipe.register($1::jsonb, $2, $3)",
                    [String(decoding: text, as: UTF8.self), key, manifestKey.dataKey(dataFile: manifest.dataFile)])
            } catch where ErrorClass.of(error) == .permanent {
                // One bad manifest must not stop the others; it is logged on every scan until fixed.
                logger.error("manifest rejected by the database; fix or remove it", metadata: ["starpipe.key": "\(key)", "starpipe.error": "\(error)"])
                continue
            }
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

    // MARK: Jobs

    /// Claims one job and processes it; returns false when nothing was claimable.
    func processNext() throws -> Bool {
        let claimed: ClaimedJob?
        do {
            claimed = try options.retry.run("claim", logger: logger, before: { _ in self.connection = nil }) {
                try ClaimedJob.claim(try database(), workerID: options.workerID, leaseSeconds: options.leaseSeconds)
            }
        } catch let unreadable as UnreadableManifest {
            logger.error("claimed job has an unreadable manifest; failing it", metadata: [
                "starpipe.job_id": "\(unreadable.jobID)", "starpipe.error": "\(unreadable.reason)",
            ])
            try query("SELECT starpipe.fail($1, $2, $3)",
                      [String(unreadable.jobID), String(unreadable.fence), "manifest cannot be used: \(unreadable.reason)"])
            return true
        }
        guard let job = claimed else { return false }
        var logger = self.logger
        logger[metadataKey: "starpipe.job_id"] = "\(job.id)"
        logger[metadataKey: "starpipe.client"] = "\(job.client)"
        logger[metadataKey: "starpipe.table"] = "\(job.table)"
        logger.info("claimed", metadata: ["starpipe.stage": "\(job.stage)", "starpipe.fence": "\(job.fence)"])

        let (lock, proceed) = try lockClient(job, logger: logger)
        guard proceed else { return true }
        let keeper = LeaseKeeper(job: job, options: options, lock: lock, logger: logger, stop: worker.stop,
                                 canceller: { [self] in canceller.withLock { $0 } })
        keeper.start()
        defer {
            if let lock, let redis { _ = try? lock.release(on: redis) }
        }
        var outcome: (any Error)?
        do {
            try process(job, keeper: keeper, logger: logger)
        } catch {
            outcome = error
        }
        // From here on the keeper sends no cancel request, so none can hit the calls that settle the job.
        keeper.stop()
        guard let outcome else { return true }
        do {
            throw outcome
        } catch let error as PostgresError where error.sqlState == "SP002" {
            logger.warning("fenced out: another worker holds this job now")
        } catch is FencedOut {
            logger.warning("fenced out: another worker holds this job now")
        } catch let error as PostgresError where error.sqlState == "57014" && worker.stop.mustAbort {
            logger.warning("statement cancelled at the stop deadline; releasing the job", metadata: ["starpipe.error": "\(error)"])
            try release(job)
        } catch is StopDeadlineExceeded {
            logger.warning("stop deadline reached; releasing the job")
            try release(job)
        } catch where ErrorClass.of(error) == .transient {
            logger.error("transient failures exhausted; job goes back to the queue", metadata: ["starpipe.error": "\(error)"])
            let status = try settle(job, "SELECT starpipe.nack($1, $2, $3)", job.fenced + ["\(error)"])
            if status == "DEAD" {
                logger.error("job moved to the dead-letter queue after its last attempt")
            }
        } catch {
            logger.error("job failed", metadata: ["starpipe.error": "\(error)"])
            try fail(job, reason: "\(error)")
        }
        return true
    }

    /// Takes the client's Redis lock when Redis is configured. Returns nil (after releasing the
    /// claim) when another holder has it. When Redis cannot be reached the job goes on without the
    /// lock: the database lease and fencing token alone guard correctness.
    private func lockClient(_ job: ClaimedJob, logger: Logger) throws -> (lock: RedisLock?, proceed: Bool) {
        guard let url = options.redisURL else { return (nil, true) }
        let lock = RedisLock(key: RedisLock.clientKey(job.client), token: "\(options.workerID)#\(job.fence)",
                             ttlMilliseconds: options.leaseSeconds * 1000)
        let acquired: Bool
        do {
            acquired = try options.retry.run("take the client's Redis lock", logger: logger, before: { _ in self.redis?.disconnect() }) {
                if redis == nil { redis = try RedisConnection(url: url) }
                return try lock.acquire(on: redis!)
            }
        } catch {
            logger.warning("Redis unavailable; going on with the database lease alone", metadata: ["starpipe.error": "\(error)"])
            return (nil, true)
        }
        guard acquired else {
            logger.info("client locked in Redis by another worker; releasing the claim")
            try release(job)
            worker.stop.sleep(options.pollSeconds)
            return (nil, false)
        }
        return (lock, true)
    }

    private func process(_ job: ClaimedJob, keeper: LeaseKeeper, logger: Logger) throws {
        if job.stage == "registered" {
            let rows: Int64
            var attempt = 0
            do {
                rows = try options.retry.run("ingest \(job.dataKey)", logger: logger, before: { _ in self.connection = nil }) {
                    attempt += 1
                    // A COMMIT whose reply was lost may have landed: then the job moved on and we go on with it.
                    if attempt > 1, let loaded = try alreadyLoaded(job) { return loaded }
                    return try RawIngestion(job: job, bucket: bucket, connection: try database(), chunkSize: options.chunkSize,
                                     allowBinary: options.binaryCopy,
                                     abandon: {
                                         if keeper.isFencedOut { return FencedOut() }
                                         return self.worker.stop.mustAbort ? StopDeadlineExceeded() : nil
                                     }).run()
                }
            } catch let error as StarpipeError where ErrorClass.of(error) == .permanent {
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
            if worker.stop.mustAbort { throw StopDeadlineExceeded() }
            let status = try query("SELECT starpipe.\(step)($1, $2)", job.fenced).scalar ?? ""
            logger.info("\(step) done", metadata: ["starpipe.status": "\(status)"])
            guard status == "PROCESSING" else { return }
        }
    }

    /// The raw row count when this holder's load of `job` already committed, else nil.
    private func alreadyLoaded(_ job: ClaimedJob) throws -> Int64? {
        let row = try query("SELECT stage, fence, rows_raw FROM starpipe.job WHERE job_id = $1", [String(job.id)]).rows.first
        guard let row, row[1] == String(job.fence), row[0] != "registered" else { return nil }
        return Int64(row[2] ?? "0")
    }

    private func fail(_ job: ClaimedJob, reason: String) throws {
        try settle(job, "SELECT starpipe.fail($1, $2, $3)", job.fenced + [reason])
    }

    /// Gives the job back at once, without counting the claim as an attempt.
    private func release(_ job: ClaimedJob) throws {
        try settle(job, "SELECT starpipe.release($1, $2)", job.fenced)
    }

    /// Runs a call that lets go of a job; if the job was taken over meanwhile, there is nothing to let go.
    ///
    /// At the stop deadline the lease keeper may have cancelled statements (PQcancel). A cancel
    /// request is asynchronous: one sent while a statement was ending can still land on the next,
    /// such as a ROLLBACK or this call. So a transaction left open is rolled back first, and a call
    /// refused with 57014 after the deadline is sent again (the keeper has stopped, none follows).
    @discardableResult
    private func settle(_ job: ClaimedJob, _ sql: String, _ parameters: [String?]) throws -> String? {
        var attempt = 1
        while true {
            do {
                if let connection, connection.isHealthy, connection.isInTransaction {
                    try connection.execute("ROLLBACK")
                }
                return try query(sql, parameters).scalar
            } catch let error as PostgresError where error.sqlState == "SP002" {
                logger.warning("fenced out: another worker holds this job now", metadata: ["starpipe.job_id": "\(job.id)"])
                return nil
            } catch let error as PostgresError where error.sqlState == "57014" && worker.stop.mustAbort && attempt < 3 {
                logger.info("a cancel request sent at the stop deadline landed late; sending again",
                            metadata: ["starpipe.job_id": "\(job.id)"])
                attempt += 1
            }
        }
    }
}
