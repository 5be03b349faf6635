import Foundation
import Logging
import StarpipeBucket
import StarpipeCore
import StarpipePostgres
import StarpipeRedis
import Synchronization

/// One thread of a worker: its own connections, one job at a time.
///
/// The slot's work is split by stage: registration (`WorkerSlot+Registration`), claiming a job
/// and seeing it through (`WorkerSlot+Claiming`), the stage driver (`WorkerSlot+Stages`) and
/// settlement after an error (`WorkerSlot+Settlement`), which follows ``ErrorDecision``.
final class WorkerSlot: @unchecked Sendable {
    let index: Int
    let worker: Worker
    let logger: Logger
    /// The slot's pipeline database connection; nil after a failure, until ``database()`` reconnects.
    var connection: PostgresConnection?
    /// The slot's Redis connection for client locks, when Redis is configured.
    var redis: RedisConnection?
    /// Whether ``connection`` has run `LISTEN starpipe_job`.
    var listening = false
    /// When slot 0 last scanned the bucket; scans are at most one per poll interval.
    var lastDiscovery: Date?
    /// Cancels the statement running on ``connection``; replaced on every reconnect, read by the deadline watcher.
    let canceller = Mutex<PostgresCanceller?>(nil)

    var options: WorkerOptions { worker.options }
    var bucket: any Bucket { worker.bucket }

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
            // Listing a bucket costs a request per page, so a busy slot does not rescan after every job; with bucket
            // events, the scan is a sweep for lost events, every sweep interval.
            let interval = worker.events == nil ? options.pollSeconds : options.sweepSeconds
            if index == 0, lastDiscovery.map({ Date().timeIntervalSince($0) >= interval }) ?? true {
                lastDiscovery = Date()
                try discover()
            }
            if try processNext() { continue }
            if options.untilIdle { return }
            do {
                try idle()
            } catch where ErrorDecision.outcome(for: .init(error), at: .idle, attempt: .spent, shutdown: .init(worker.stop)) == .retry {
                // The database went away while we waited; reconnect on the next round.
                logger.warning("idle wait interrupted; reconnecting", metadata: ["starpipe.error": "\(error)"])
                connection = nil
                worker.stop.sleep(min(1, options.pollSeconds))
            }
        }
    }

    /// Waits for work without hard polling: woken within milliseconds by a NOTIFY (a registration, a job
    /// finishing, released or retried), otherwise when `next_claimable_at` says a claim may succeed (a
    /// backoff or lease ending), and at most after the poll interval (when slot 0 scans the bucket again).
    /// Work that cannot become claimable without an event (a day-2 file behind a BLOCKED day 1) gives
    /// NULL, and the slot sleeps the whole interval. The floor keeps a claim race from spinning.
    private func idle() throws {
        let connection = try database()
        if !listening {
            try connection.listen("starpipe_job")
            listening = true
        }
        var wait = options.pollSeconds
        if let next = try connection.query("SELECT extract(epoch FROM starpipe.next_claimable_at() - pg_catalog.now())").scalar,
           let seconds = Double(next) {
            wait = min(wait, max(Self.idleFloorSeconds, seconds))
        }
        let end = Date().addingTimeInterval(wait)
        while !worker.stop.isStopping, Date() < end {
            if try !connection.waitForNotifications(timeout: min(0.1, max(0, end.timeIntervalSinceNow))).isEmpty { return }
        }
    }

    /// The shortest idle wait, in seconds: a job claimable "now" that this slot could not claim is
    /// being claimed by another session.
    static let idleFloorSeconds = 0.05

    // MARK: Database access with retries

    /// The slot's connection, (re)connecting with backoff.
    func database() throws -> PostgresConnection {
        if let connection, connection.isHealthy { return connection }
        connection = nil
        listening = false
        let made = try options.retry.run("connect to the pipeline database", logger: logger) {
            try PostgresConnection(url: options.databaseURL, applicationName: "starpipe-worker", settings: PostgresConnection.pipelineSettings)
        }
        connection = made
        // Made here, on the slot's thread; the deadline watcher uses it from its own.
        let current = made.makeCanceller()
        canceller.withLock { $0 = current }
        return made
    }

    /// Runs one statement, retrying transient failures on a fresh connection.
    @discardableResult
    func query(_ sql: String, _ parameters: [String?] = []) throws -> PostgresResult {
        try options.retry.run("query", logger: logger, before: { _ in self.connection = nil }) {
            try database().query(sql, parameters)
        }
    }
}
