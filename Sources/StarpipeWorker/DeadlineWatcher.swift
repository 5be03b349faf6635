import Foundation
import Logging
import StarpipePostgres

/// Watches the stop deadline while a slot works on a job. Once it has passed, it cancels the
/// slot's running statement (a long COPY, transform or promotion) so it rolls back and the job
/// can be released, and again every half second until ``stop()``: a request that reaches the
/// server between two statements is dropped there, and a heartbeat blocked behind the job's row
/// lock must not hold the cancel back. Runs on its own thread.
final class DeadlineWatcher: @unchecked Sendable {
    private let stopSignal: StopSignal
    private let logger: Logger
    private let canceller: @Sendable () -> PostgresCanceller?
    private let loop: LoopThread
    private static let cancelInterval = 0.5

    /// `canceller` gives what cancels the slot's running statement (on its current connection, which
    /// a retry may have replaced) once the stop deadline has passed.
    init(jobID: Int64, stop: StopSignal, logger: Logger, canceller: @escaping @Sendable () -> PostgresCanceller?) {
        self.stopSignal = stop
        self.logger = logger
        self.canceller = canceller
        loop = LoopThread(name: "starpipe-deadline-\(jobID)")
    }

    func start() {
        loop.start { [self] in watch() }
    }

    /// Stops watching and waits for the thread to end. Once it returns, no cancel request is sent
    /// any more. Calling it again does nothing.
    func stop() {
        loop.stop()
    }

    private func watch() {
        var lastCancel: Date?
        while loop.isRunning {
            Thread.sleep(forTimeInterval: 0.05)
            guard stopSignal.mustAbort else { continue }
            if let lastCancel, Date().timeIntervalSince(lastCancel) < Self.cancelInterval { continue }
            guard let canceller = canceller() else { continue }
            if lastCancel == nil { logger.warning("stop deadline reached; cancelling the running statement") }
            lastCancel = Date()
            canceller.cancel()
        }
    }
}
