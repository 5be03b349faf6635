import Foundation
import Logging

/// Every message logged through ``logger``, kept in order, for tests that assert on what was (or was not) logged.
final class CapturedLog: @unchecked Sendable {
    private let lock = NSLock()
    private var entries: [(level: Logger.Level, message: String)] = []

    /// A logger at `trace` level that records into this log.
    var logger: Logger {
        Logger(label: "starpipe.test") { _ in CapturedLogHandler(log: self) }
    }

    /// The messages logged at `level`.
    func messages(at level: Logger.Level) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return entries.filter { $0.level == level }.map(\.message)
    }

    func append(_ level: Logger.Level, _ message: String) {
        lock.lock()
        entries.append((level, message))
        lock.unlock()
    }
}
