/// A manifest's bucket key, parsed. Two layouts are accepted:
///
/// - structured: `[prefix/]client=<client>/table=<table>/date=<YYYYMMDD>/run_id=<run_id>/manifest.json`,
///   with the data file beside it (normally `data.json`);
/// - flat: `[prefix/]<TABLE>-<CLIENT>-<DDMMYYYY>.manifest.json` beside `<TABLE>-<CLIENT>-<DDMMYYYY>.json`
///   (names are case-folded to lower case).
public struct ManifestKey: Sendable, Equatable {
    /// Which key layout the manifest uses.
    public enum Layout: Sendable, Equatable {
        case structured, flat
    }

    /// The manifest's full key.
    public let key: String
    public let layout: Layout
    public let client: String
    public let table: String
    public let date: SnapshotDate
    /// The run id, which only the structured layout carries in its key.
    public let runID: String?

    /// File name of a manifest in the structured layout.
    public static let manifestFileName = "manifest.json"
    /// Default data file name in the structured layout.
    public static let dataFileName = "data.json"
    private static let flatManifestSuffix = ".manifest.json"

    /// Parses `key`. Returns nil for keys that are not manifests (data files, other objects);
    /// throws for keys that are manifests by name but break the layout or carry unsafe names.
    public static func parse(_ key: String) throws(StarpipeError) -> ManifestKey? {
        let parts = key.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard let last = parts.last else { return nil }
        if last == manifestFileName {
            return try parseStructured(key: key, parts: parts)
        }
        if last.hasSuffix(flatManifestSuffix) {
            return try parseFlat(key: key, fileName: String(last.dropLast(flatManifestSuffix.count)))
        }
        return nil
    }

    /// The structured directory for one table extraction, ending in `/`.
    public static func structuredDirectory(client: String, table: String, date: SnapshotDate, runID: String) -> String {
        "client=\(client)/table=\(table)/date=\(date.compact)/run_id=\(runID)/"
    }

    /// The key of the data file a manifest names: its directory plus `dataFile`.
    public func dataKey(dataFile: String) -> String {
        directory + dataFile
    }

    /// The directory part of the manifest's key, ending in `/` (or empty).
    public var directory: String {
        guard let slash = key.lastIndex(of: "/") else { return "" }
        return String(key[...slash])
    }

    /// Checks that the manifest says what its key says (client, table, date, run id, data file).
    public func check(_ manifest: Manifest) throws(StarpipeError) {
        func mismatch(_ field: String) -> StarpipeError {
            StarpipeError(.invalidManifest, "manifest \(field) does not match its bucket key \(key)")
        }
        guard manifest.client == client else { throw mismatch("client") }
        guard manifest.table == table else { throw mismatch("table") }
        guard manifest.snapshotDate == date.iso else { throw mismatch("snapshot_date") }
        if let runID, manifest.runId != runID { throw mismatch("run_id") }
        if layout == .flat, manifest.dataFile.lowercased() != "\(table)-\(client)-\(flatDate).json" {
            throw mismatch("data_file")
        }
    }

    private var flatDate: String {
        let compact = date.compact
        return String(compact.suffix(2)) + String(compact.dropFirst(4).prefix(2)) + String(compact.prefix(4))
    }

    private static func parseStructured(key: String, parts: [String]) throws(StarpipeError) -> ManifestKey? {
        guard parts.count >= 5 else {
            throw StarpipeError(.invalidKey, "manifest key \(key) does not follow client=/table=/date=/run_id=/manifest.json")
        }
        let tail = Array(parts.suffix(5))
        func value(_ part: String, _ label: String) throws(StarpipeError) -> String {
            guard part.hasPrefix(label + "=") else {
                throw StarpipeError(.invalidKey, "manifest key \(key) has no \(label)= segment where expected")
            }
            return String(part.dropFirst(label.count + 1))
        }
        let client = try value(tail[0], "client")
        let table = try value(tail[1], "table")
        let dateText = try value(tail[2], "date")
        let runID = try value(tail[3], "run_id")
        try Name.check(client, kind: "client")
        try Name.check(table, kind: "table")
        try RunID.check(runID)
        guard let date = SnapshotDate(compact: dateText) else {
            throw StarpipeError(.invalidKey, "manifest key \(key) has a date that is not YYYYMMDD")
        }
        return ManifestKey(key: key, layout: .structured, client: client, table: table, date: date, runID: runID)
    }

    private static func parseFlat(key: String, fileName: String) throws(StarpipeError) -> ManifestKey? {
        let fields = fileName.split(separator: "-", omittingEmptySubsequences: false).map { $0.lowercased() }
        guard fields.count == 3 else {
            throw StarpipeError(.invalidKey, "flat manifest key \(key) is not <TABLE>-<CLIENT>-<DDMMYYYY>.manifest.json")
        }
        try Name.check(fields[0], kind: "table")
        try Name.check(fields[1], kind: "client")
        guard let date = SnapshotDate(compact: fields[2], dayFirst: true) else {
            throw StarpipeError(.invalidKey, "flat manifest key \(key) has a date that is not DDMMYYYY")
        }
        return ManifestKey(key: key, layout: .flat, client: fields[1], table: fields[0], date: date, runID: nil)
    }
}
