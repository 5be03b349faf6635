import Foundation
import Logging
import StarpipeCore
import StarpipeRedis

/// Claiming: take the next job, lock its client, keep its lease and watch the stop deadline while
/// the stage driver runs, then settle it.
extension WorkerSlot {
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
        let keeper = LeaseKeeper(job: job, options: options, lock: lock, logger: logger)
        let watcher = DeadlineWatcher(jobID: job.id, stop: worker.stop, logger: logger,
                                      canceller: { [self] in canceller.withLock { $0 } })
        keeper.start()
        watcher.start()
        defer {
            if let lock, let redis { _ = try? lock.release(on: redis) }
        }
        var outcome: (any Error)?
        do {
            try drive(job, keeper: keeper, logger: logger)
        } catch {
            outcome = error
        }
        // From here on no cancel request is sent, so none can hit the calls that settle the job.
        watcher.stop()
        keeper.stop()
        if let outcome {
            try settle(job, after: outcome, logger: logger)
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
        let clock = ContinuousClock()
        let started = clock.now
        do {
            acquired = try options.retry.run("take the client's Redis lock", logger: logger, before: { _ in self.redis?.disconnect() }) {
                if redis == nil { redis = try RedisConnection(url: url) }
                return try lock.acquire(on: redis!)
            }
        } catch {
            logger.warning("Redis unavailable; going on with the database lease alone", metadata: ["starpipe.error": "\(error)"])
            return (nil, true)
        }
        worker.metrics?.recordLock(client: job.client, duration: clock.now - started, heldByAnother: !acquired)
        guard acquired else {
            logger.info("client locked in Redis by another worker; releasing the claim")
            try release(job)
            worker.stop.sleep(options.pollSeconds)
            return (nil, false)
        }
        return (lock, true)
    }
}
