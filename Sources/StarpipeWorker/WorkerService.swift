import Foundation
import Logging
import ServiceLifecycle

/// Runs a ``Worker`` as a swift-service-lifecycle `Service`: on graceful shutdown (SIGTERM, SIGINT)
/// it stops claiming, lets the current jobs finish, and after `shutdownDeadline` seconds rolls back
/// and releases whatever is still running, so another worker can take it at once.
public struct WorkerService: Service {
    public let worker: Worker
    /// Seconds a job may keep running after a stop request. Defaults to 30.
    public let shutdownDeadline: Double

    public init(worker: Worker, shutdownDeadline: Double = 30) {
        self.worker = worker
        self.shutdownDeadline = shutdownDeadline
    }

    public func run() async throws {
        let worker = self.worker
        try await withGracefulShutdownHandler {
            // The slots block on libpq; they get their own threads, not the cooperative pool.
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let thread = Thread {
                    continuation.resume(with: Result { try worker.run() })
                }
                thread.name = "starpipe-worker"
                thread.start()
            }
        } onGracefulShutdown: {
            worker.requestStop(deadline: shutdownDeadline)
        }
    }
}
