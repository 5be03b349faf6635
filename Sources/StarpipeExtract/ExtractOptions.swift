import Foundation
import StarpipeCore

/// What to extract and where to put it.
public struct ExtractOptions: Sendable {
    /// The client's database: a libpq URL, `mysql://…` or `sqlite:…` (docs/TYPES.md). Its password is never
    /// logged or written.
    public var sourceURL: String
    /// The source's password when the URL holds none (read from a file or a prompt). Never logged or written;
    /// nil leaves it to `PGPASSWORD`/`~/.pgpass` (Postgres) or `MYSQL_PWD` (MySQL).
    public var password: String?
    /// Client name used in bucket keys and raw schema names.
    public var client: String
    /// Source schema to read. Defaults to `public`.
    public var schema: String
    /// Tables to read; nil reads every table of ``schema``.
    public var tables: [String]?
    /// Rows per keyset page. Defaults to 10,000.
    public var pageSize: Int
    /// Snapshot date recorded in keys and manifests. Defaults to today (UTC).
    public var snapshotDate: SnapshotDate
    /// Run id; defaults to a UTC timestamp plus a random suffix.
    public var runID: String
    /// How connecting, a page that fails without losing the connection, and a table whose connection was lost are
    /// tried again. Defaults to 6 tries, waits drawn from 0 … min(30 s, 0.5 s × 2^(n-1)).
    public var retry: Backoff = ExtractOptions.defaultRetry
    /// Seconds a page waits for its table's lock (Postgres `lock_timeout`) before it fails and is retried. Defaults to 10.
    public var lockTimeout: Double = 10

    /// The default ``retry``.
    public static let defaultRetry = Backoff(attempts: 6, baseSeconds: 0.5, capSeconds: 30)
    /// Cursors, lookback and state of incremental reading; nil reads every table in full and keeps no state.
    public var incremental: IncrementalOptions?

    public init(sourceURL: String, client: String, schema: String = "public", tables: [String]? = nil,
                pageSize: Int = 10_000, snapshotDate: SnapshotDate? = nil, runID: String? = nil, password: String? = nil,
                incremental: IncrementalOptions? = nil) {
        self.sourceURL = sourceURL
        self.password = password
        self.client = client
        self.schema = schema
        self.tables = tables
        self.pageSize = pageSize
        self.snapshotDate = snapshotDate ?? Self.today()
        self.runID = runID ?? Self.newRunID()
        self.incremental = incremental
    }

    /// Today's date in UTC.
    public static func today() -> SnapshotDate {
        let parts = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: Date())
        return SnapshotDate(year: parts.year!, month: parts.month!, day: parts.day!)!
    }

    /// A fresh run id: `YYYYMMDDTHHMMSSZ-xxxxxx`.
    public static func newRunID() -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        return formatter.string(from: Date()) + "-" + String(repeating: "0", count: 8 - suffix.count) + suffix
    }
}
