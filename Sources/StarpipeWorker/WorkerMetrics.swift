import CoreMetrics
import Foundation
import Prometheus

/// What one worker process measures itself, through swift-metrics into its own Prometheus registry: stage
/// durations, transient retries, lock waits, its lease and slot count. Counts of the ledger (jobs, rows, queue,
/// DLQ, drift, last promotion) are not kept here but read from the database at each scrape (``LedgerMetrics``),
/// so that every worker reports the same values for them. Labels are client and table names, stages and
/// operation names; never a row's value.
public final class WorkerMetrics: Sendable {
    /// The process's registry; ``exposition()`` renders it.
    public let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory

    /// Histogram buckets of stage durations, in seconds: a stage takes from milliseconds to many minutes.
    static let stageBuckets: [Duration] = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800]
        .map { Duration.milliseconds(Int64($0 * 1000)) }

    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = [Name.stageDuration: Self.stageBuckets, Name.lockAcquire: Self.stageBuckets]
        self.factory = factory
    }

    /// Metric names this process exposes (the ledger's are in ``LedgerMetrics``).
    public enum Name {
        /// Histogram: seconds each stage (raw, transform, validate, promote) of a job took in this worker.
        public static let stageDuration = "starpipe_stage_duration_seconds"
        /// Counter: transient failures this worker retried, by operation.
        public static let retries = "starpipe_worker_retries_total"
        /// Counter: claims whose client was locked in Redis by another worker (the claim was given back).
        public static let lockWaits = "starpipe_lock_waits_total"
        /// Histogram: seconds taking a client's Redis lock took.
        public static let lockAcquire = "starpipe_lock_acquire_seconds"
        /// Gauge: the lease (visibility timeout) this worker claims jobs with, in seconds.
        public static let lease = "starpipe_worker_lease_seconds"
        /// Gauge: job slots of this worker (--concurrency).
        public static let slots = "starpipe_worker_slots"
        /// Gauge: resident set size of this process, in bytes (read from /proc at each scrape).
        public static let residentMemory = "process_resident_memory_bytes"
    }

    /// Records that `stage` of a job of `client`.`table` took `duration`.
    public func recordStage(_ stage: String, client: String, table: String, duration: Duration) {
        CoreMetrics.Timer(label: Name.stageDuration, dimensions: [("client", client), ("stage", stage), ("table", table)], factory: factory)
            .recordNanoseconds(duration.nanoseconds)
    }

    /// Counts one retried transient failure of `operation`.
    public func recordRetry(_ operation: String) {
        CoreMetrics.Counter(label: Name.retries, dimensions: [("operation", operation)], factory: factory).increment()
    }

    /// The label of a retried operation: its name up to the first word that names a key ("ingest client=…" is "ingest").
    static func operationLabel(_ operation: String) -> String {
        operation.split(separator: " ").prefix { !$0.contains("/") && !$0.contains("=") }.joined(separator: " ")
    }

    /// Records a Redis lock attempt for `client`: how long it took, and whether another worker held the lock.
    public func recordLock(client: String, duration: Duration, heldByAnother: Bool) {
        CoreMetrics.Timer(label: Name.lockAcquire, dimensions: [("client", client)], factory: factory).recordNanoseconds(duration.nanoseconds)
        let waits = CoreMetrics.Counter(label: Name.lockWaits, dimensions: [("client", client)], factory: factory)
        if heldByAnother { waits.increment() } else { waits.increment(by: 0) }
    }

    /// Records this worker's configuration gauges.
    public func recordConfiguration(_ options: WorkerOptions) {
        CoreMetrics.Gauge(label: Name.lease, dimensions: [], factory: factory).record(Double(options.leaseSeconds))
        CoreMetrics.Gauge(label: Name.slots, dimensions: [], factory: factory).record(Double(options.concurrency))
    }

    /// The process registry in the Prometheus text format, with the resident set size read now.
    public func exposition() -> String {
        if let rss = Self.residentBytes() {
            CoreMetrics.Gauge(label: Name.residentMemory, dimensions: [], factory: factory).record(Double(rss))
        }
        return Self.addingHelp(registry.emitToString(), Self.help)
    }

    /// HELP text of this process's metrics (swift-metrics carries none; the registry refuses two texts for one name).
    static let help: [String: String] = [
        Name.stageDuration: "Seconds each stage (raw, transform, validate, promote) of a job took in this worker.",
        Name.retries: "Transient failures this worker retried, by operation.",
        Name.lockWaits: "Claims whose client was locked in Redis by another worker, so the claim was given back.",
        Name.lockAcquire: "Seconds taking a client's Redis lock took.",
        Name.lease: "The lease (visibility timeout) this worker claims jobs with, in seconds.",
        Name.slots: "Job slots of this worker (--concurrency).",
        Name.residentMemory: "Resident memory size of this process in bytes.",
    ]

    /// `exposition` with a `# HELP` line put before each `# TYPE` line of a name in `help` that has none.
    static func addingHelp(_ exposition: String, _ help: [String: String]) -> String {
        var lines: [Substring] = []
        for line in exposition.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.split(separator: " ").dropFirst(2).first,
               let text = help[String(name)], !(lines.last?.hasPrefix("# HELP \(name) ") ?? false) {
                lines.append("# HELP \(name) \(text)")
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Resident set size from /proc/self/statm (pages × page size); nil where /proc is absent.
    static func residentBytes() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return nil }
        let fields = text.split(separator: " ")
        guard fields.count > 1, let pages = Int(fields[1]) else { return nil }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }
}

extension Duration {
    /// The duration in whole nanoseconds.
    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
