import Foundation
import Logging
import StarpipeBucket
import StarpipeCore

/// Registers manifests named by S3 event notifications from an SQS queue (`starpipe worker --events`).
///
/// Events are hints, not a log: registration is idempotent, so a duplicate or reordered event registers nothing
/// twice, and slot 0's periodic sweep (``WorkerOptions/sweepSeconds``) registers whatever an event never announced.
/// A message is deleted only after everything it names has been registered (committed) or found known; a message
/// that cannot be read, or names a manifest that cannot be registered, is left alone, comes back after its
/// visibility timeout, and goes to the dead-letter queue once the queue's redrive policy says so.
final class EventConsumer: @unchecked Sendable {
    private let queue: SQSQueue
    private let location: S3Location
    private let registrar: WorkerSlot
    private let worker: Worker
    private let logger: Logger

    /// Seconds one receive waits for messages (long polling); also bounds how long a stop waits for the consumer.
    static let waitSeconds = 10

    init(queue: SQSQueue, location: S3Location, worker: Worker, logger: Logger) {
        self.queue = queue
        self.location = location
        self.worker = worker
        var logger = logger
        logger[metadataKey: "starpipe.slot"] = "events"
        self.logger = logger
        // Its own slot, so its own database connection; it never claims.
        registrar = WorkerSlot(index: worker.options.concurrency, worker: worker, logger: logger)
    }

    /// Receives and handles messages until the worker stops or `finished` says the slots are done.
    func run(finished: () -> Bool) {
        let visibility = worker.options.eventVisibilitySeconds
        while !worker.stop.isStopping, !finished() {
            let messages: [SQSQueue.Message]
            do {
                messages = try queue.receive(maxMessages: 10, waitSeconds: Self.waitSeconds, visibilitySeconds: visibility)
            } catch {
                logger.warning("receiving bucket events failed; trying again", metadata: ["starpipe.error": "\(error)"])
                worker.stop.sleep(1)
                continue
            }
            var hiddenUntil = Date().addingTimeInterval(Double(visibility))
            for (index, message) in messages.enumerated() {
                // Messages not handled before a stop reappear after their visibility timeout.
                if worker.stop.isStopping { break }
                if hiddenUntil.timeIntervalSinceNow < Double(visibility) / 2 {
                    // Still working through the batch: keep the rest hidden from other workers.
                    for pending in messages[index...] {
                        try? queue.extendVisibility(pending, seconds: visibility)
                    }
                    hiddenUntil = Date().addingTimeInterval(Double(visibility))
                }
                handle(message)
            }
        }
    }

    private func handle(_ message: SQSQueue.Message) {
        var metadata: Logger.Metadata = ["starpipe.message_id": "\(message.id)", "starpipe.receive_count": "\(message.receiveCount)"]
        switch S3EventNotification.decode(message.body, bucket: location.bucket, prefix: location.prefix) {
        case .test:
            delete(message, metadata)
        case .unreadable:
            logger.error("bucket event cannot be read; left for the dead-letter queue", metadata: metadata)
        case .created(let keys):
            var settled = true
            for key in keys {
                metadata["starpipe.key"] = "\(key)"
                do {
                    if try registrar.register(eventKey: key) == .rejected { settled = false }
                } catch {
                    logger.warning("registering from a bucket event failed; the event will come again",
                                   metadata: metadata.merging(["starpipe.error": "\(error)"]) { $1 })
                    settled = false
                    registrar.connection = nil
                }
            }
            if settled {
                delete(message, metadata)
            } else {
                logger.error("bucket event not settled; it comes back, then goes to the dead-letter queue", metadata: metadata)
            }
        }
    }

    private func delete(_ message: SQSQueue.Message, _ metadata: Logger.Metadata) {
        do {
            try queue.delete(message)
        } catch {
            // Registration committed; the event comes back and finds the manifest known.
            logger.warning("deleting a handled bucket event failed", metadata: metadata.merging(["starpipe.error": "\(error)"]) { $1 })
        }
    }
}
