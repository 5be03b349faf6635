import Foundation
import StarpipeCore

/// How often and how long an S3 request is tried again after a transient failure: full-jitter exponential
/// backoff, each wait drawn uniformly from zero to `min(cap, base × 2^attempt)`.
public struct S3RetryPolicy: Sendable {
    /// Tries per request, the first included. Defaults to 5.
    public var attempts: Int
    /// First backoff ceiling in seconds. Defaults to 0.1.
    public var baseSeconds: Double
    /// Largest backoff ceiling in seconds. Defaults to 5.
    public var capSeconds: Double

    public init(attempts: Int = 5, baseSeconds: Double = 0.1, capSeconds: Double = 5) {
        self.attempts = attempts
        self.baseSeconds = baseSeconds
        self.capSeconds = capSeconds
    }

    /// The wait before try `attempt + 1` (attempt counts from 0).
    func delay(after attempt: Int) -> Double {
        Backoff(attempts: attempts, baseSeconds: baseSeconds, capSeconds: capSeconds).delay(after: attempt + 1)
    }

    /// Runs `body` until it succeeds, fails permanently, or the tries are spent.
    func run<T>(_ body: () throws(S3Failure) -> T) throws(S3Failure) -> T {
        var attempt = 0
        while true {
            do {
                return try body()
            } catch where error.isTransient && attempt + 1 < attempts {
                Thread.sleep(forTimeInterval: delay(after: attempt))
                attempt += 1
            }
        }
    }
}
