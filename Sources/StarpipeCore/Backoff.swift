import Foundation

/// Exponential backoff with full jitter: after failed try `n` (1-based) the wait is drawn uniformly from
/// `0 ... min(cap, base × 2^(n-1))`, so many clients that failed together do not come back together.
public struct Backoff: Sendable, Equatable {
    /// Tries in all, the first included.
    public var attempts: Int
    /// First ceiling in seconds.
    public var baseSeconds: Double
    /// Largest ceiling in seconds.
    public var capSeconds: Double

    public init(attempts: Int, baseSeconds: Double, capSeconds: Double) {
        self.attempts = max(1, attempts)
        self.baseSeconds = baseSeconds
        self.capSeconds = capSeconds
    }

    /// The longest wait after failed try `attempt` (1-based).
    public func ceiling(after attempt: Int) -> Double {
        min(capSeconds, baseSeconds * pow(2, Double(attempt - 1)))
    }

    /// A wait after failed try `attempt` (1-based), drawn from `0 ... ceiling(after: attempt)`.
    public func delay(after attempt: Int) -> Double {
        Double.random(in: 0...ceiling(after: attempt))
    }
}
