import Foundation
import Logging

/// Reads configuration from the process environment.
enum Environment {
    /// The variable's value, or nil when unset or empty.
    static func value(_ name: String) -> String? {
        guard let value = ProcessInfo.processInfo.environment[name], !value.isEmpty else { return nil }
        return value
    }
}

/// Sets up swift-log once per process, on standard error: human-readable lines, or JSON lines (``JSONLogHandler``).
enum LoggingBootstrap {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var done = false

    static func once(json: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        guard !done else { return }
        done = true
        if json {
            LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        } else {
            LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
        }
    }
}
