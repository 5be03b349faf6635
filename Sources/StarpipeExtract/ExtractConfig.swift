import Foundation
import StarpipeCore
import Yams

/// A `starpipe extract` config file (YAML, annotated in `examples/starpipe-extract.yml`): every extract setting, and
/// the incremental section. Command-line flags override it. Relative paths in it (`password_file`, `incremental.state`)
/// are taken from the file's directory. It never holds a password: a source URL with one, or a `password` key, is
/// refused. Every unknown key or bad value is an error naming the file, the key and its line, never the value.
public struct ExtractConfig: Sendable {
    /// The file it was read from.
    public var path: String
    /// `source`: the client database URL, without a password.
    public var source: String?
    /// `password_file`: absolute path of a file holding the source password (chmod 600).
    public var passwordFile: String?
    /// `client`.
    public var client: String?
    /// `bucket`: the bucket URL.
    public var bucket: String?
    /// `schema`.
    public var schema: String?
    /// `tables`: the tables to extract, a YAML list.
    public var tables: [String]?
    /// `page_size`.
    public var pageSize: Int?
    /// `retries`: times a transient failure of the source is tried again.
    public var retries: Int?
    /// `lock_timeout`: seconds a page waits for its table's lock.
    public var lockTimeout: Double?
    /// `log_level`.
    public var logLevel: String?
    /// `log_format`: text or json.
    public var logFormat: String?
    /// `mode`: `incremental` reads the tables that have a cursor incrementally; `full` (the default) reads every table.
    public var incrementalMode: Bool?
    /// The `incremental` section: cursors, lookback, skew margin and state directory (`enabled` follows ``incrementalMode``).
    public var incremental: IncrementalOptions?

    /// The keys of the top level, the incremental section, and a table's entry in it.
    static let topKeys = ["source", "password_file", "client", "bucket", "schema", "tables", "page_size", "retries",
                          "lock_timeout", "log_level", "log_format", "mode", "incremental"]
    static let incrementalKeys = ["state", "lookback", "skew_margin", "null_cursor", "tables"]
    static let tableKeys = ["cursor", "time_zone", "null_cursor"]

    /// Reads the file at `path`.
    public init(contentsOf path: String) throws {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StarpipeError(.configuration, "cannot read the config file \(path)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw StarpipeError(.configuration, "the config file \(path) is not UTF-8 text")
        }
        try self.init(yaml: text, path: path)
    }

    /// Reads YAML text; `path` names it in errors and its directory anchors relative paths.
    public init(yaml: String, path: String) throws {
        self.path = path
        let directory = (path as NSString).deletingLastPathComponent
        func absolute(_ file: String) -> String {
            file.hasPrefix("/") || directory.isEmpty ? file : directory + "/" + file
        }
        func error(_ node: Node?, _ key: String, _ problem: String) -> StarpipeError {
            StarpipeError(.configuration, "\(path)\(node?.mark.map { " line \($0.line)" } ?? ""): \(key): \(problem)")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml, .basic)
        } catch let failure as YamlError {
            switch failure {
            case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _), .composer(_, let problem, let mark, _):
                throw StarpipeError(.configuration, "\(path) line \(mark.line): not valid YAML: \(problem)")
            case .duplicatedKeysInMapping(let duplicates, let context):
                // Yams marks the mapping; the line of the key's second appearance after it is the one to fix.
                let key = duplicates.sorted().first ?? ""
                let lines = yaml.split(separator: "\n", omittingEmptySubsequences: false)
                let repeats = lines.indices.filter { index in
                    index >= context.mark.line - 1 && lines[index].drop { $0 == " " }.hasPrefix(key + ":")
                }
                let line = repeats.count > 1 ? repeats[1] + 1 : context.mark.line
                throw StarpipeError(.configuration, "\(path) line \(line): \(key): is given twice")
            default:
                throw StarpipeError(.configuration, "\(path) is not valid YAML")
            }
        }
        guard let root else {
            throw StarpipeError(.configuration, "\(path) is empty; it needs at least source, client and bucket")
        }
        let top = try Self.mapping(root, "the top level", keys: Self.topKeys, error)
        func string(_ key: String, in map: [String: (key: Node, value: Node)], path keyPath: String) throws -> String? {
            guard let entry = map[key] else { return nil }
            guard let scalar = entry.value.scalar, !scalar.string.isEmpty else {
                throw error(entry.value, keyPath, "must be a non-empty string")
            }
            return scalar.string
        }
        source = try string("source", in: top, path: "source")
        if let source, Self.holdsPassword(source) {
            throw error(top["source"]!.value, "source", "holds a password; a password never goes in this file: put it in a file readable by its owner only (chmod 600) and name it in password_file")
        }
        passwordFile = try string("password_file", in: top, path: "password_file").map(absolute)
        client = try string("client", in: top, path: "client")
        if let client, !Name.isValid(client) {
            throw error(top["client"]!.value, "client", "must be lower-case letters, digits and _ (at most \(Name.maxBytes) bytes)")
        }
        bucket = try string("bucket", in: top, path: "bucket")
        schema = try string("schema", in: top, path: "schema")
        if let entry = top["tables"] {
            guard let sequence = entry.value.sequence, !sequence.isEmpty,
                  let names = Optional(sequence.compactMap { $0.scalar?.string }), names.count == sequence.count,
                  names.allSatisfy({ !$0.isEmpty }) else {
                throw error(entry.value, "tables", "must be a non-empty list of table names")
            }
            tables = names
        }
        if let text = try string("page_size", in: top, path: "page_size") {
            guard let value = Int(text), value > 0, text.allSatisfy(\.isNumber) else {
                throw error(top["page_size"]!.value, "page_size", "must be a positive whole number of rows")
            }
            pageSize = value
        }
        if let text = try string("retries", in: top, path: "retries") {
            guard let value = Int(text), value >= 0, text.allSatisfy(\.isNumber) else {
                throw error(top["retries"]!.value, "retries", "must be a whole number, 0 or more")
            }
            retries = value
        }
        if let text = try string("lock_timeout", in: top, path: "lock_timeout") {
            guard let value = Double(text), value > 0, value.isFinite else {
                throw error(top["lock_timeout"]!.value, "lock_timeout", "must be a positive number of seconds")
            }
            lockTimeout = value
        }
        logLevel = try string("log_level", in: top, path: "log_level")
        if let logLevel, !["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(logLevel) {
            throw error(top["log_level"]!.value, "log_level", "must be trace, debug, info, notice, warning, error or critical")
        }
        logFormat = try string("log_format", in: top, path: "log_format")
        if let logFormat, !["text", "json"].contains(logFormat) {
            throw error(top["log_format"]!.value, "log_format", "must be text or json")
        }
        if let mode = try string("mode", in: top, path: "mode") {
            guard ["full", "incremental"].contains(mode) else {
                throw error(top["mode"]!.value, "mode", "must be full or incremental")
            }
            incrementalMode = mode == "incremental"
        }
        guard let section = top["incremental"] else {
            if incrementalMode == true {
                throw error(top["mode"]!.value, "mode", "is incremental, but the file has no incremental section naming the tables' cursors")
            }
            return
        }
        let map = try Self.mapping(section.value, "incremental", keys: Self.incrementalKeys, error)
        func duration(_ key: String) throws -> Int64? {
            guard let text = try string(key, in: map, path: "incremental.\(key)") else { return nil }
            guard let value = Self.microseconds(text) else {
                throw error(map[key]!.value, "incremental.\(key)", "must be a duration such as 0s, 500ms, 30s, 10m, 2h or 1d")
            }
            return value
        }
        func policy(_ key: String, in map: [String: (key: Node, value: Node)], path keyPath: String) throws -> NullCursorPolicy? {
            guard let text = try string(key, in: map, path: keyPath) else { return nil }
            guard let policy = NullCursorPolicy(rawValue: text) else {
                throw error(map[key]!.value, keyPath, "must be fail, include or exclude")
            }
            return policy
        }
        let defaultPolicy = try policy("null_cursor", in: map, path: "incremental.null_cursor") ?? .fail
        guard let tablesEntry = map["tables"] else {
            throw error(section.value, "incremental.tables", "is missing: name each incremental table and its cursor")
        }
        let tableMap = try Self.mapping(tablesEntry.value, "incremental.tables", keys: nil, error)
        guard !tableMap.isEmpty else {
            throw error(tablesEntry.value, "incremental.tables", "names no table")
        }
        var cursors: [String: TableCursor] = [:]
        for (name, entry) in tableMap.sorted(by: { $0.key < $1.key }) {
            let keyPath = "incremental.tables.\(name)"
            guard Name.isValid(name) else {
                throw error(entry.key, keyPath, "is not a starpipe table name (the source table's name in lower case)")
            }
            let table = try Self.mapping(entry.value, keyPath, keys: Self.tableKeys, error)
            guard let cursorEntry = table["cursor"] else {
                throw error(entry.value, "\(keyPath).cursor", "is missing: name the cursor column, or a list of columns to coalesce")
            }
            let columns: [String]
            if let scalar = cursorEntry.value.scalar, !scalar.string.isEmpty {
                columns = [scalar.string]
            } else if let sequence = cursorEntry.value.sequence, !sequence.isEmpty,
                      sequence.allSatisfy({ !($0.scalar?.string ?? "").isEmpty }) {
                columns = sequence.map { $0.scalar!.string }
            } else {
                throw error(cursorEntry.value, "\(keyPath).cursor", "must be a column name or a non-empty list of column names")
            }
            guard Set(columns).count == columns.count else {
                throw error(cursorEntry.value, "\(keyPath).cursor", "names a column twice")
            }
            let zone = try string("time_zone", in: table, path: "\(keyPath).time_zone")
            if let zone, !TableCursor.isZoneName(zone) {
                throw error(table["time_zone"]!.value, "\(keyPath).time_zone", "must be an IANA zone name such as UTC or Europe/Paris")
            }
            cursors[name] = TableCursor(columns: columns, timeZone: zone,
                                        nullCursor: try policy("null_cursor", in: table, path: "\(keyPath).null_cursor") ?? defaultPolicy)
        }
        incremental = IncrementalOptions(
            enabled: incrementalMode ?? false, cursors: cursors,
            stateDirectory: absolute(try string("state", in: map, path: "incremental.state") ?? "starpipe-state"),
            lookbackMicroseconds: try duration("lookback") ?? IncrementalOptions.defaultLookback,
            skewMarginMicroseconds: try duration("skew_margin") ?? IncrementalOptions.defaultSkewMargin)
    }

    /// A mapping's entries by key; throws for a node that is not a mapping, a key that is not a string, a key given
    /// twice, or (with `keys`) a key not among them.
    private static func mapping(_ node: Node, _ name: String, keys: [String]?,
                                _ error: (Node?, String, String) -> StarpipeError) throws -> [String: (key: Node, value: Node)] {
        guard let mapping = node.mapping else { throw error(node, name, "must be a mapping of keys to values") }
        var entries: [String: (key: Node, value: Node)] = [:]
        for (key, value) in mapping {
            let prefix = name == "the top level" ? "" : name + "."
            guard let text = key.scalar?.string else { throw error(key, name, "has a key that is not a plain string") }
            if text == "password" {
                throw error(key, prefix + text, "a password never goes in this file: put it in a file readable by its owner only (chmod 600) and name it in password_file")
            }
            if let keys, !keys.contains(text) {
                throw error(key, prefix + text, "unknown key (known here: \(keys.joined(separator: ", ")))")
            }
            guard entries[text] == nil else { throw error(key, prefix + text, "is given twice") }
            entries[text] = (key, value)
        }
        return entries
    }

    /// `0`, or a whole number followed by `us`, `ms`, `s`, `m`, `h` or `d`, in microseconds; at most 365 days.
    static func microseconds(_ text: String) -> Int64? {
        if text == "0" { return 0 }
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        guard !digits.isEmpty, digits.count <= 9, let value = Int64(digits) else { return nil }
        let units: [String: Int64] = ["us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000, "d": 86_400_000_000]
        guard let unit = units[String(text.dropFirst(digits.count))] else { return nil }
        let (result, overflow) = value.multipliedReportingOverflow(by: unit)
        guard !overflow, result <= 365 * 86_400_000_000 else { return nil }
        return result
    }

    /// Whether a source URL carries a password: `scheme://user:password@…` or a `password=` parameter.
    static func holdsPassword(_ url: String) -> Bool {
        if url.lowercased().contains("password=") { return true }
        guard let scheme = url.range(of: "://") else { return false }
        let rest = url[scheme.upperBound...]
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        guard let at = authority.lastIndex(of: "@") else { return false }
        return authority[..<at].contains(":")
    }
}
