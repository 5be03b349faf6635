import Foundation
import Logging

/// One JSON object per line on standard error (`--log-format json`): `ts` (UTC, milliseconds), `level`, `logger`,
/// `message`, then the metadata with starpipe's namespace dropped, so a job's lines carry `job_id`, `client`,
/// `table` and `stage` as top-level keys. Metadata holds keys, counts and errors, never row values.
struct JSONLogHandler: LogHandler {
    let label: String
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info
    var metadataProvider: Logger.MetadataProvider?

    private static let output = LineWriter()

    init(label: String) {
        self.label = label
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var object: [String: Any] = [:]
        for (key, value) in merged {
            let name = key.hasPrefix("starpipe.") ? String(key.dropFirst("starpipe.".count)) : key
            object[name] = Self.json(value)
        }
        object["ts"] = Self.timestamp(Date())
        object["level"] = event.level.rawValue
        object["logger"] = label
        object["message"] = "\(event.message)"
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        Self.output.write(data + Data("\n".utf8))
    }

    private static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let string): string
        case .stringConvertible(let convertible): "\(convertible)"
        case .array(let array): array.map(json)
        case .dictionary(let dictionary): dictionary.mapValues(json)
        }
    }

    private static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: date)
    }
}

/// Whole lines to standard error, one writer at a time, so lines of several threads never interleave.
private final class LineWriter: @unchecked Sendable {
    private let lock = NSLock()

    func write(_ data: Data) {
        lock.lock()
        defer { lock.unlock() }
        FileHandle.standardError.write(data)
    }
}
