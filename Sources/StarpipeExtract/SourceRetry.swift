import Foundation
import Logging
import StarpipeCore

/// Tries a call to the source again after a transient failure, with full-jitter backoff (``ExtractOptions/retry``),
/// logging each retry; permanent failures, and the last transient one, are thrown.
struct SourceRetry {
    var backoff: Backoff
    var logger: Logger
    /// True stops retrying (SIGTERM, SIGINT).
    var isCancelled: () -> Bool = { false }

    /// Runs `body` until it succeeds, fails for good, or the tries are spent; `prepare` runs before each retry (roll
    /// back to a savepoint, reconnect).
    func run<T>(_ operation: String, transient: (any Error) -> Bool, prepare: () throws -> Void = {},
                _ body: () throws -> T) throws -> T {
        var attempt = 1
        while true {
            do {
                return try body()
            } catch where attempt < backoff.attempts && transient(error) && !isCancelled() {
                let delay = backoff.delay(after: attempt)
                logger.warning("transient failure of the source; retrying", metadata: [
                    "starpipe.operation": "\(operation)", "starpipe.attempt": "\(attempt)",
                    "starpipe.delay_s": "\(String(format: "%.3f", delay))", "starpipe.error": "\(error)",
                ])
                Thread.sleep(forTimeInterval: delay)
                try prepare()
                attempt += 1
            }
        }
    }

    /// Connects (or reconnects) with `body`, retrying a transient ``SourceConnectionError``; the one that ends the
    /// tries is thrown as the run's ``StarpipeError``.
    func connecting<T>(_ operation: String, _ body: () throws -> T) throws -> T {
        do {
            return try run(operation, transient: { ($0 as? SourceConnectionError)?.isTransient == true }, body)
        } catch let error as SourceConnectionError {
            throw error.final
        }
    }
}
