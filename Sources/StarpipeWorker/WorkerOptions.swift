import Foundation

/// How a worker runs. Every field has a documented default; the CLI maps flags and env onto it.
public struct WorkerOptions: Sendable {
    /// libpq URL of the pipeline database (the one with `CREATE EXTENSION starpipe`).
    public var databaseURL: String
    /// `redis://host:port` for per-client locks; nil uses the database lease alone. Defaults to nil.
    public var redisURL: String?
    /// Name recorded on claims and events. Defaults to `<host>:<pid>`.
    public var workerID: String
    /// Jobs processed in parallel, each for a different client. Defaults to 1.
    public var concurrency: Int
    /// Lease (visibility timeout) of a claimed job, in seconds; renewed every third of it. Defaults to 300.
    public var leaseSeconds: Int
    /// Seconds between bucket scans when idle. Defaults to 2.
    public var pollSeconds: Double
    /// Stop when a scan finds nothing to do, instead of polling forever. Defaults to false.
    public var untilIdle: Bool
    /// Bytes read from the bucket per chunk. Defaults to 1 MiB.
    public var chunkSize: Int
    /// Backoff for transient failures at every network boundary. Defaults to 4 attempts, 0.2 s to 5 s.
    public var retry: RetryPolicy
    /// Use binary COPY when every raw column type has a binary encoder (values not in canonical
    /// form make that load start again in text). False always uses text COPY. Defaults to true.
    public var binaryCopy: Bool
    /// The production databases mappings with `production: NAME` promote into. Defaults to none (each name then
    /// comes from `STARPIPE_PRODUCTION_<NAME>`).
    public var production: ProductionDatabases
    /// With bucket events (an SQS queue given to ``Worker``), seconds between the sweeps that list the bucket for
    /// manifests whose event was lost; without events the bucket is scanned every ``pollSeconds``. Defaults to 300.
    public var sweepSeconds: Double
    /// Seconds a received bucket event stays hidden from other receivers, extended while its batch is worked on.
    /// Defaults to 60.
    public var eventVisibilitySeconds: Int
    /// URL the ledger's webhook alerts are posted to (Slack-compatible JSON); nil sends none. Defaults to nil.
    public var alertWebhook: String?
    /// Dead jobs of one client that make a DLQ build-up alert. Defaults to 3.
    public var alertDLQDepth: Int
    /// Seconds back a FAILED, DEAD or drift-BLOCKED transition is still news worth an alert. Defaults to 86400 (a day).
    public var alertWindowSeconds: Int

    public init(databaseURL: String, redisURL: String? = nil, workerID: String? = nil, concurrency: Int = 1,
                leaseSeconds: Int = 300, pollSeconds: Double = 2, untilIdle: Bool = false, chunkSize: Int = 1 << 20,
                retry: RetryPolicy = RetryPolicy(), binaryCopy: Bool = true,
                production: ProductionDatabases = ProductionDatabases.fromEnvironment, sweepSeconds: Double = 300,
                eventVisibilitySeconds: Int = 60, alertWebhook: String? = nil, alertDLQDepth: Int = 3,
                alertWindowSeconds: Int = 86400) {
        self.databaseURL = databaseURL
        self.redisURL = redisURL
        self.workerID = workerID ?? "\(ProcessInfo.processInfo.hostName):\(getpid())"
        self.concurrency = max(1, concurrency)
        self.leaseSeconds = max(1, leaseSeconds)
        self.pollSeconds = pollSeconds
        self.untilIdle = untilIdle
        self.chunkSize = chunkSize
        self.retry = retry
        self.binaryCopy = binaryCopy
        self.production = production
        self.sweepSeconds = sweepSeconds
        self.eventVisibilitySeconds = max(1, eventVisibilitySeconds)
        self.alertWebhook = alertWebhook
        self.alertDLQDepth = max(1, alertDLQDepth)
        self.alertWindowSeconds = max(1, alertWindowSeconds)
    }
}
