import Foundation
import Logging
import StarpipePostgres
import StarpipeRedis
import Synchronization

/// Keeps a claimed job's leases alive while the slot works: the database lease (heartbeat, with the stage's
/// progress when it reports one, ``report(progress:)``) and, with Redis, the client lock. Runs on its own thread with its own connections, every third of
/// the lease. If the database says another worker now holds the job, ``isFencedOut`` turns true
/// and the slot abandons its work. (The stop deadline is the ``DeadlineWatcher``'s.)
final class LeaseKeeper: @unchecked Sendable {
    private let job: ClaimedJob
    private let options: WorkerOptions
    private let lock: RedisLock?
    private let logger: Logger
    private let fencedOut = Mutex(false)
    /// How far the current stage has got (bytes read by a raw load); -1 until a stage reports.
    private let progress = Atomic<Int64>(-1)
    private let loop: LoopThread

    init(job: ClaimedJob, options: WorkerOptions, lock: RedisLock?, logger: Logger) {
        self.job = job
        self.options = options
        self.lock = lock
        self.logger = logger
        loop = LoopThread(name: "starpipe-lease-\(job.id)")
    }

    /// True once a heartbeat was refused with a stale fencing token.
    var isFencedOut: Bool { fencedOut.withLock { $0 } }

    /// Records how far the stage has got; the next heartbeat reports it, so the ledger sees a long stage move.
    func report(progress figure: Int64) {
        progress.store(figure, ordering: .relaxed)
    }

    func start() {
        loop.start { [self] in keep() }
    }

    /// Stops renewing and waits for the thread to end. Calling it again does nothing.
    func stop() {
        loop.stop()
    }

    private func keep() {
        let interval = max(0.2, Double(options.leaseSeconds) / 3)
        var database: PostgresConnection?
        var redis: RedisConnection?
        var next = Date().addingTimeInterval(interval)
        while loop.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
            guard Date() >= next else { continue }
            next = Date().addingTimeInterval(interval)
            do {
                if database == nil || database?.isHealthy == false {
                    database = try PostgresConnection(url: options.databaseURL, applicationName: "starpipe-lease", settings: PostgresConnection.pipelineSettings)
                }
                let figure = progress.load(ordering: .relaxed)
                try database!.query("SELECT starpipe.heartbeat($1, $2, $3::interval, $4::bigint)",
                                    job.fenced + ["\(options.leaseSeconds) seconds", figure < 0 ? nil : String(figure)])
            } catch {
                if ErrorDecision.outcome(for: .init(error), at: .heartbeat, attempt: .spent, shutdown: .running) == .fencedOut {
                    logger.warning("lease lost: another worker holds the job")
                    fencedOut.withLock { $0 = true }
                    return
                }
                database = nil
                logger.warning("heartbeat failed; will retry", metadata: ["starpipe.error": "\(error)"])
            }
            guard let lock, let url = options.redisURL else { continue }
            do {
                if redis == nil { redis = try RedisConnection(url: url) }
                if try !lock.renew(on: redis!) {
                    // Redis lost the key (expired, or restarted empty): take it again if it is free.
                    let again = try lock.acquire(on: redis!)
                    logger.warning("Redis lock was lost", metadata: ["starpipe.reacquired": "\(again)"])
                }
            } catch {
                redis?.disconnect()
                logger.warning("Redis lock renewal failed; the database lease still guards the job", metadata: ["starpipe.error": "\(error)"])
            }
        }
    }
}
