import Foundation
import Logging
import StarpipeCore

/// Exponential backoff with full jitter for calls across a network boundary.
///
/// Attempt `n` (1-based) that fails with a transient error sleeps a random time in
/// `0 ... min(cap, base * 2^(n-1))` before attempt `n+1`; permanent errors are thrown at once.
public struct RetryPolicy: Sendable {
    /// First backoff ceiling in seconds. Defaults to 0.2.
    public var baseSeconds: Double
    /// Largest backoff ceiling in seconds. Defaults to 5.
    public var capSeconds: Double
    /// Total attempts, including the first (3 to 5 is sensible). Defaults to 4.
    public var attempts: Int
    /// Called with the operation's name before each retry (the worker counts them in its metrics). Defaults to nil.
    public var onRetry: (@Sendable (String) -> Void)?

    public init(baseSeconds: Double = 0.2, capSeconds: Double = 5, attempts: Int = 4, onRetry: (@Sendable (String) -> Void)? = nil) {
        self.baseSeconds = baseSeconds
        self.capSeconds = capSeconds
        self.attempts = max(1, attempts)
        self.onRetry = onRetry
    }

    /// The backoff ceiling after failed attempt `attempt` (1-based).
    public func ceiling(after attempt: Int) -> Double {
        backoff.ceiling(after: attempt)
    }

    private var backoff: Backoff { Backoff(attempts: attempts, baseSeconds: baseSeconds, capSeconds: capSeconds) }

    /// Whether the error table says to try again after failed attempt `attempt` (1-based): a
    /// transient failure with attempts left. The policy does not watch the stop signal.
    func retries(_ error: any Error, after attempt: Int) -> Bool {
        ErrorDecision.outcome(for: .init(error), at: .call, attempt: .init(attempt, of: attempts), shutdown: .running) == .retry
    }

    /// Runs `body`, retrying transient failures; `before` runs ahead of each retry (e.g. reconnect).
    public func run<T>(_ operation: String, logger: Logger, before: (any Error) -> Void = { _ in },
                       _ body: () throws -> T) throws -> T {
        var attempt = 1
        while true {
            do {
                return try body()
            } catch where retries(error, after: attempt) {
                let delay = backoff.delay(after: attempt)
                logger.warning("transient failure; retrying", metadata: [
                    "starpipe.operation": "\(operation)", "starpipe.attempt": "\(attempt)",
                    "starpipe.delay_s": "\(String(format: "%.3f", delay))", "starpipe.error": "\(error)",
                ])
                onRetry?(operation)
                before(error)
                Thread.sleep(forTimeInterval: delay)
                attempt += 1
            }
        }
    }
}
