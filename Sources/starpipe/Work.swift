import ArgumentParser
import ServiceLifecycle
import StarpipeBucket
import StarpipeWorker

/// `starpipe worker`: register, claim and process jobs.
struct Work: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Register manifests from the bucket and drive each job to production.",
        discussion: """
            SIGTERM or SIGINT stops claiming; running jobs get --shutdown-deadline seconds to finish, \
            then are rolled back and released for another worker.
            """)

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Bucket URL: file:///var/starpipe/bucket, or s3://BUCKET/PREFIX?region=R&endpoint=URL&path_style=true|false (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials). Env STARPIPE_BUCKET.")
    var bucket: String?

    @Option(help: "SQS queue of the bucket's S3 event notifications, sqs://HOST/ACCOUNT/QUEUE?region=R. Env STARPIPE_EVENTS_URL. Without it the bucket is scanned every --poll-interval.")
    var events: String?

    @Option(help: "With --events: seconds between bucket sweeps that register manifests whose event was lost. Defaults to 300.")
    var sweepInterval: Double = 300

    @Option(help: "With --events: seconds a received event stays hidden from other workers, extended while it is worked on. Defaults to 60.")
    var eventVisibility: Int = 60

    @Option(help: "Redis URL (redis://host:port) for per-client locks. Env STARPIPE_REDIS_URL. Without it the database lease alone is used.")
    var redis: String?

    @Option(help: "Jobs to run in parallel, for different clients. Defaults to 1.")
    var concurrency: Int = 1

    @Flag(help: "Exit when there is nothing left to do instead of polling.")
    var untilIdle = false

    @Option(help: "Seconds between bucket scans when idle. Defaults to 2.")
    var pollInterval: Double = 2

    @Option(help: "Lease (visibility timeout) of a claimed job in seconds; renewed every third. Defaults to 300.")
    var lease: Int = 300

    @Option(help: "Seconds a running job may take to finish after SIGTERM before it is released. Defaults to 30.")
    var shutdownDeadline: Double = 30

    @Option(help: "Attempts at each network call before giving up (3 to 5 is sensible). Defaults to 4.")
    var retryAttempts: Int = 4

    @Option(help: "First backoff ceiling in seconds; each retry doubles it (full jitter). Defaults to 0.2.")
    var retryBase: Double = 0.2

    @Option(help: "Largest backoff ceiling in seconds. Defaults to 5.")
    var retryCap: Double = 5

    @Option(help: "COPY format: auto (binary when every raw column type allows it, falling back to text per file) or text. Defaults to auto.")
    var copyFormat: String = "auto"

    @Option(help: "Name of this worker in the ledger. Defaults to host:pid.")
    var workerId: String?

    @Option(help: "Serve Prometheus metrics (GET /metrics) on HOST:PORT, e.g. 127.0.0.1:9464. Env STARPIPE_METRICS_LISTEN. Defaults to none.")
    var metricsListen: String?

    @Option(help: "Serve the read-only dashboard (GET / and GET /api/dashboard) on HOST:PORT, e.g. 127.0.0.1:9465. Env STARPIPE_DASHBOARD_LISTEN. Defaults to none. Beyond loopback it needs --dashboard-token.")
    var dashboardListen: String?

    @Option(help: "Token every dashboard request must carry (Authorization: Bearer TOKEN, or ?token=TOKEN in a browser); at least 16 of A-Z a-z 0-9 . _ ~ -. Env STARPIPE_DASHBOARD_TOKEN. Required when --dashboard-listen is not a loopback address.")
    var dashboardToken: String?

    @Option(help: "Post webhook alerts (Slack-compatible JSON) for FAILED and DEAD jobs, drift BLOCKs and DLQ build-up to this URL. Env STARPIPE_ALERT_WEBHOOK. Defaults to none.")
    var alertWebhook: String?

    @Option(help: "With --alert-webhook: dead jobs of one client that make a DLQ build-up alert. Defaults to 3.")
    var alertDlqDepth: Int = 3

    @OptionGroup var production: ProductionOptions

    @OptionGroup var common: CommonOptions

    func run() async throws {
        guard let bucketURL = bucket ?? Environment.value("STARPIPE_BUCKET") else {
            throw ValidationError("give --bucket URL or set STARPIPE_BUCKET")
        }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard ["auto", "text"].contains(copyFormat) else { throw ValidationError("--copy-format is auto or text") }
        guard retryAttempts >= 1, retryBase > 0, retryCap >= retryBase else {
            throw ValidationError("--retry-attempts must be at least 1, and 0 < --retry-base <= --retry-cap")
        }
        if let url = alertWebhook ?? Environment.value("STARPIPE_ALERT_WEBHOOK"), !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
            throw ValidationError("--alert-webhook takes an http:// or https:// URL")
        }
        guard alertDlqDepth >= 1 else { throw ValidationError("--alert-dlq-depth must be at least 1") }
        let logger = common.logger("starpipe.worker")
        let options = WorkerOptions(
            databaseURL: try database.url(), redisURL: redis ?? Environment.value("STARPIPE_REDIS_URL"),
            workerID: workerId, concurrency: concurrency, leaseSeconds: lease, pollSeconds: pollInterval,
            untilIdle: untilIdle, retry: RetryPolicy(baseSeconds: retryBase, capSeconds: retryCap, attempts: retryAttempts),
            binaryCopy: copyFormat == "auto", production: try production.databases(), sweepSeconds: sweepInterval,
            eventVisibilitySeconds: eventVisibility, alertWebhook: alertWebhook ?? Environment.value("STARPIPE_ALERT_WEBHOOK"),
            alertDLQDepth: alertDlqDepth)
        let bucket = try BucketFactory.open(bucketURL)
        var queue: SQSQueue?
        if let eventsURL = events ?? Environment.value("STARPIPE_EVENTS_URL") {
            guard bucket is S3Bucket else { throw ValidationError("--events needs an s3:// bucket") }
            guard sweepInterval > 0, (1...43_200).contains(eventVisibility) else {
                throw ValidationError("--sweep-interval must be positive and --event-visibility 1 to 43200 seconds")
            }
            queue = SQSQueue(location: try SQSLocation(url: eventsURL), credentials: try AWSCredentials.fromEnvironment())
        }
        let listen = metricsListen ?? Environment.value("STARPIPE_METRICS_LISTEN")
        let metrics = listen.map { _ in WorkerMetrics() }
        let worker = Worker(options: options, bucket: bucket, events: queue, logger: logger, metrics: metrics)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: WorkerService(worker: worker, shutdownDeadline: shutdownDeadline),
                  successTerminationBehavior: .gracefullyShutdownGroup),
        ]
        if let listen, let metrics {
            let server = try MetricsServer(listen: listen, ledger: LedgerMetrics(databaseURL: options.databaseURL),
                                           process: metrics, logger: logger)
            services.append(.init(service: server))
        }
        if let listen = dashboardListen ?? Environment.value("STARPIPE_DASHBOARD_LISTEN") {
            let server = try DashboardServer(listen: listen, token: dashboardToken ?? Environment.value("STARPIPE_DASHBOARD_TOKEN"),
                                             ledger: DashboardLedger(databaseURL: options.databaseURL), logger: logger)
            services.append(.init(service: server))
        }
        let group = ServiceGroup(configuration: .init(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger))
        try await group.run()
    }
}
