import Foundation
import Synchronization

/// Tells a worker's slots to stop claiming, and when in-flight work must be abandoned.
public final class StopSignal: Sendable {
    private struct State {
        var stopping = false
        var deadline: Date?
    }

    private let state = Mutex(State())

    public init() {}

    /// Stop claiming now; abandon (roll back and release) work still running after `deadline`.
    public func request(deadline: Date) {
        state.withLock {
            $0.stopping = true
            $0.deadline = $0.deadline.map { min($0, deadline) } ?? deadline
        }
    }

    /// True once a stop was requested: take no new job.
    public var isStopping: Bool { state.withLock { $0.stopping } }

    /// True once the stop deadline has passed: abandon the current job.
    public var mustAbort: Bool {
        state.withLock { state in state.deadline.map { Date() >= $0 } ?? false }
    }

    /// Sleeps up to `seconds`, waking early when a stop is requested.
    func sleep(_ seconds: Double) {
        let end = Date().addingTimeInterval(seconds)
        while !isStopping, Date() < end {
            Thread.sleep(forTimeInterval: min(0.05, max(0, end.timeIntervalSinceNow)))
        }
    }
}

/// Thrown inside a job when the stop deadline passed: the job is rolled back and released.
struct StopDeadlineExceeded: Error, CustomStringConvertible {
    var description: String { "worker stopping: job released at the shutdown deadline" }
}

/// Thrown inside a job when its lease keeper learned that another worker holds the job now.
struct FencedOut: Error, CustomStringConvertible {
    var description: String { "fenced out: another worker holds this job now" }
}
