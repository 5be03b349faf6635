import Foundation
import Logging
import StarpipeBucket
import StarpipeCore

/// The worker: registers manifests found in the bucket, claims jobs and drives each one through
/// raw ingestion, transform, validation and promotion. It keeps no state of its own; the
/// extension's ledger says where every job stands, so it can be killed and restarted at any time.
///
/// ``WorkerOptions/concurrency`` slots run on their own threads, each with its own database
/// (and Redis) connection, so jobs of different clients proceed in parallel. The database allows
/// one PROCESSING job per client, so slots never work on the same client at once.
public final class Worker: Sendable {
    public let options: WorkerOptions
    public let bucket: any Bucket
    /// The SQS queue of the bucket's event notifications, when the worker consumes them (``EventConsumer``).
    public let events: SQSQueue?
    /// Stop requests from a signal handler or a service group.
    public let stop: StopSignal
    /// This process's own metrics (stage durations, retries, lock waits), when they are served. Defaults to nil.
    public let metrics: WorkerMetrics?
    private let logger: Logger

    /// With `events`, manifests are registered as their S3 event notifications arrive, and the bucket is swept
    /// every ``WorkerOptions/sweepSeconds`` for events that were lost; `bucket` must then be an ``S3Bucket``.
    public init(options: WorkerOptions, bucket: any Bucket, events: SQSQueue? = nil, logger: Logger,
                stop: StopSignal = StopSignal(), metrics: WorkerMetrics? = nil) {
        var options = options
        if let metrics {
            let counted = options.retry.onRetry
            options.retry.onRetry = { operation in
                metrics.recordRetry(WorkerMetrics.operationLabel(operation))
                counted?(operation)
            }
            metrics.recordConfiguration(options)
        }
        self.options = options
        self.metrics = metrics
        self.bucket = bucket
        self.events = events
        self.stop = stop
        var logger = logger
        logger[metadataKey: "starpipe.worker"] = "\(options.workerID)"
        self.logger = logger
    }

    /// Runs every slot until stopped (or idle, with ``WorkerOptions/untilIdle``); blocks the caller.
    /// Throws the first slot's error once all slots have ended.
    public func run() throws {
        // One discovery pass first, so every slot sees the jobs already waiting (with events, the consumer
        // registers what waits in the queue, and the first sweep comes after one sweep interval, unless the
        // worker is to stop when idle: then everything in the bucket is what there is to do).
        let first = WorkerSlot(index: 0, worker: self, logger: logger)
        if events == nil || options.untilIdle {
            try first.discover()
        } else {
            first.lastDiscovery = Date()
        }
        let slots = [first] + (1..<options.concurrency).map { WorkerSlot(index: $0, worker: self, logger: logger) }
        let failures = Failures()
        let group = DispatchGroup()
        for slot in slots {
            group.enter()
            let thread = Thread {
                do { try slot.loop() } catch {
                    failures.record(error)
                    // One slot's fatal error stops the others after their current job.
                    self.stop.request(deadline: Date().addingTimeInterval(self.options.leaseSeconds.seconds))
                }
                group.leave()
            }
            thread.name = "starpipe-worker-\(slot.index)"
            thread.start()
        }
        let consumerDone = DispatchGroup()
        let slotsDone = Finished()
        if let events {
            guard let location = (bucket as? S3Bucket)?.location else {
                throw StarpipeError(.configuration, "bucket events need an s3:// bucket")
            }
            let consumer = EventConsumer(queue: events, location: location, worker: self, logger: logger)
            consumerDone.enter()
            let thread = Thread {
                consumer.run(finished: { slotsDone.value })
                consumerDone.leave()
            }
            thread.name = "starpipe-worker-events"
            thread.start()
        }
        if let url = options.alertWebhook {
            let notifier = AlertNotifier(url: url, worker: self, logger: logger)
            consumerDone.enter()
            let thread = Thread {
                notifier.run(finished: { slotsDone.value })
                consumerDone.leave()
            }
            thread.name = "starpipe-worker-alerts"
            thread.start()
        }
        group.wait()
        slotsDone.set()
        consumerDone.wait()
        if let error = failures.first { throw error }
    }

    /// Asks the worker to stop claiming and to finish (or, after `deadline` seconds, release) its jobs.
    public func requestStop(deadline seconds: Double) {
        stop.request(deadline: Date().addingTimeInterval(seconds))
    }
}

private final class Finished: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func set() { lock.lock(); done = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return done }
}

private final class Failures: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [any Error] = []

    func record(_ error: any Error) {
        lock.lock()
        errors.append(error)
        lock.unlock()
    }

    var first: (any Error)? {
        lock.lock()
        defer { lock.unlock() }
        return errors.first
    }
}

extension Int {
    var seconds: Double { Double(self) }
}
