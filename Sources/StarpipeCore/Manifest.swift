import Foundation

/// The commit marker of one extracted table: written after its data file, it describes and
/// checksums that file. Its JSON form is specified by `docs/manifest.schema.json`.
public struct Manifest: Codable, Sendable, Equatable {
    /// One source column, as the client's database declares it.
    public struct Column: Codable, Sendable, Equatable {
        /// Column name as in the source (case preserved).
        public var name: String
        /// Type of the values in the data file, as `format_type` names it, e.g. `uuid`, `timestamp with time zone`,
        /// `numeric(12,2)`, `integer[]`. For a domain it is the domain's base type (with its modifier).
        public var type: String
        /// Whether the source allows NULL.
        public var nullable: Bool
        /// The type the source declares when it differs from ``type`` (a Postgres domain's own name, a MySQL
        /// `COLUMN_TYPE`, a SQLite declared type); nil otherwise.
        public var sourceType: String?
        /// How the data file writes the values when not as ``type``'s text: ``base64`` for a `bytea` column whose
        /// values are base64 strings (MySQL/MariaDB and SQLite binary columns); nil for the type's own text
        /// (Postgres `bytea` as `\x` hex).
        public var encoding: String?

        /// ``encoding``'s one value: base64 text (RFC 4648 section 4, padded) of a `bytea` column's bytes.
        public static let base64 = "base64"

        enum CodingKeys: String, CodingKey {
            case name, type, nullable, encoding
            case sourceType = "source_type"
        }

        public init(name: String, type: String, nullable: Bool, sourceType: String? = nil, encoding: String? = nil) {
            self.name = name
            self.type = type
            self.nullable = nullable
            self.sourceType = sourceType
            self.encoding = encoding
        }
    }

    /// Where the data came from. Never holds credentials.
    public struct Source: Codable, Sendable, Equatable {
        /// Source system kind: `postgres`, `mariadb`, `mysql` or `sqlite`.
        public var kind: String
        /// Database name at the source.
        public var database: String?
        /// Schema name at the source.
        public var schema: String?
        /// Table name at the source (case preserved).
        public var table: String
        /// The source server's version (`15.8`, `10.11.19-MariaDB-0+deb12u1`, SQLite's `3.40.1`); nil when unknown.
        public var version: String?

        public init(kind: String, database: String?, schema: String?, table: String, version: String? = nil) {
            self.kind = kind
            self.database = database
            self.schema = schema
            self.table = table
            self.version = version
        }
    }

    /// Data file layouts the worker reads.
    public enum Format: String, Codable, Sendable {
        /// One JSON array of objects.
        case jsonArray = "json_array"
        /// One JSON object per line.
        case ndjson
    }

    /// Extraction modes.
    public enum Mode: String, Codable, Sendable {
        case full, incremental
    }

    /// The manifest format version this build writes and reads.
    public static let currentFormatVersion = 1

    public var formatVersion: Int
    public var client: String
    public var table: String
    public var source: Source
    /// Snapshot date, `YYYY-MM-DD`.
    public var snapshotDate: String
    /// When extraction finished, ISO 8601 UTC.
    public var extractedAt: String
    public var runId: String
    public var mode: Mode
    /// File name of the data file, in the manifest's directory.
    public var dataFile: String
    public var format: Format
    public var rowCount: Int64
    public var byteCount: Int64
    /// Lower-case hex SHA-256 of the data file's bytes.
    public var sha256: String
    /// Columns in the order the extractor wrote them.
    public var columns: [Column]
    /// Primary key column names at the source; empty when the table has none.
    public var primaryKey: [String]
    /// The cursor and watermarks of an incremental file; nil for a full snapshot (and optional with `mode:
    /// incremental`, which manifests written by other tools may use without it).
    public var incremental: Incremental?

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case client, table, source
        case snapshotDate = "snapshot_date"
        case extractedAt = "extracted_at"
        case runId = "run_id"
        case mode
        case dataFile = "data_file"
        case format
        case rowCount = "row_count"
        case byteCount = "byte_count"
        case sha256, columns
        case primaryKey = "primary_key"
        case incremental
    }

    public init(client: String, table: String, source: Source, snapshotDate: String, extractedAt: String,
                runId: String, mode: Mode = .full, dataFile: String = "data.json", format: Format = .jsonArray,
                rowCount: Int64, byteCount: Int64, sha256: String, columns: [Column], primaryKey: [String],
                incremental: Incremental? = nil) {
        self.formatVersion = Self.currentFormatVersion
        self.client = client
        self.table = table
        self.source = source
        self.snapshotDate = snapshotDate
        self.extractedAt = extractedAt
        self.runId = runId
        self.mode = mode
        self.dataFile = dataFile
        self.format = format
        self.rowCount = rowCount
        self.byteCount = byteCount
        self.sha256 = sha256
        self.columns = columns
        self.primaryKey = primaryKey
        self.incremental = incremental
    }

    /// Decodes and checks a manifest read from a bucket.
    public static func decode(_ data: Data) throws(StarpipeError) -> Manifest {
        let manifest: Manifest
        do {
            manifest = try JSONDecoder().decode(Manifest.self, from: data)
        } catch {
            throw StarpipeError(.invalidManifest, "manifest is not valid: \(Self.describe(error))")
        }
        try manifest.check()
        return manifest
    }

    /// The canonical JSON encoding (sorted keys, so equal manifests are equal bytes).
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        // Encoding plain strings and numbers cannot fail.
        return try! encoder.encode(self)
    }

    /// Checks the fields the database will also check, so a bad manifest is named early.
    public func check() throws(StarpipeError) {
        guard formatVersion == Self.currentFormatVersion else {
            throw StarpipeError(.invalidManifest, "manifest format_version \(formatVersion) is not supported (expected \(Self.currentFormatVersion))")
        }
        try Name.check(client, kind: "client")
        try Name.check(table, kind: "table")
        guard SnapshotDate(iso: snapshotDate) != nil else {
            throw StarpipeError(.invalidManifest, "manifest snapshot_date is not YYYY-MM-DD")
        }
        try RunID.check(runId)
        guard RFC3339.isInstant(extractedAt) else {
            throw StarpipeError(.invalidManifest, "manifest extracted_at must be an RFC 3339 date-time with an offset")
        }
        guard rowCount >= 0, byteCount >= 0 else {
            throw StarpipeError(.invalidManifest, "manifest row_count and byte_count must be non-negative")
        }
        guard sha256.count == 64, sha256.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw StarpipeError(.invalidManifest, "manifest sha256 must be 64 lower-case hex digits")
        }
        guard !columns.isEmpty else {
            throw StarpipeError(.invalidManifest, "manifest lists no columns")
        }
        if let incremental {
            guard mode == .incremental else {
                throw StarpipeError(.invalidManifest, "manifest has \"incremental\" but its mode is not incremental")
            }
            guard !incremental.cursor.isEmpty, RFC3339.isInstant(incremental.highWatermark),
                  incremental.lowWatermark.map(RFC3339.isInstant) ?? true else {
                throw StarpipeError(.invalidManifest, "manifest incremental needs a cursor and RFC 3339 watermarks")
            }
        }
        guard !dataFile.isEmpty, !dataFile.contains("/"), dataFile != ".", dataFile != ".." else {
            throw StarpipeError(.invalidManifest, "manifest data_file must be a plain file name")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): return "missing field \"\(key.stringValue)\""
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            return "bad value at \(context.codingPath.map { $0.stringValue }.joined(separator: "."))"
        case DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty:
            return "bad value at \(context.codingPath.map { $0.stringValue }.joined(separator: "."))"
        case DecodingError.dataCorrupted: return "not JSON"
        default: return "unreadable"
        }
    }
}
