import Foundation
import Logging
import StarpipeBucket
import StarpipeCore
import StarpipeExtract
import StarpipePostgres

/// A client database (Postgres unless said otherwise), a bucket and a state directory for incremental runs of the
/// extractor, in process.
final class IncrementalSource: @unchecked Sendable {
    let url: String
    /// The Postgres source's connection; nil for another kind of source.
    let connection: PostgresConnection!
    let bucket: String
    let state: String
    var cursors: [String: TableCursor]
    var lookback: Int64 = 0
    var skewMargin: Int64 = 0

    init(_ setup: String, cursors: [String: TableCursor]) throws {
        url = try TestServer.createDatabase("sp_incr")
        connection = try PostgresConnection(url: url)
        try connection.execute(setup)
        bucket = SourceLanding.temporaryDirectory()
        state = SourceLanding.temporaryDirectory()
        self.cursors = cursors
    }

    /// An existing source of any kind, by URL.
    init(url: String, cursors: [String: TableCursor]) {
        self.url = url
        connection = nil
        bucket = SourceLanding.temporaryDirectory()
        state = SourceLanding.temporaryDirectory()
        self.cursors = cursors
    }

    /// The same database and cursors through another URL (another role), with its own bucket and state.
    init(copying other: IncrementalSource, url: String) {
        self.url = url
        connection = other.connection
        bucket = SourceLanding.temporaryDirectory()
        state = SourceLanding.temporaryDirectory()
        cursors = other.cursors
    }

    /// One run of the extractor; `enabled: false` is a full run that still records watermarks.
    @discardableResult
    func run(tables: [String]? = nil, pageSize: Int = 2, enabled: Bool = true,
             isCancelled: @escaping @Sendable () -> Bool = { false }) throws -> [Manifest] {
        var extractor = Extractor(
            options: ExtractOptions(sourceURL: url, client: "inc", tables: tables, pageSize: pageSize,
                                    incremental: IncrementalOptions(enabled: enabled, cursors: cursors, stateDirectory: state,
                                                                    lookbackMicroseconds: lookback,
                                                                    skewMarginMicroseconds: skewMargin)),
            bucket: LocalBucket(root: bucket), logger: SourceLanding.logger)
        extractor.isCancelled = isCancelled
        let manifests = try extractor.run()
        for manifest in manifests { try manifest.check() }
        return manifests
    }

    /// The rows of a manifest's data file, in file order.
    func rows(_ manifest: Manifest) throws -> [[String: Any]] {
        let directory = ManifestKey.structuredDirectory(client: manifest.client, table: manifest.table,
                                                        date: SnapshotDate(iso: manifest.snapshotDate)!, runID: manifest.runId)
        let data = try Data(contentsOf: URL(fileURLWithPath: bucket + "/" + directory + manifest.dataFile))
        return try JSONSerialization.jsonObject(with: data) as! [[String: Any]]
    }

    /// The `id` of each row of a manifest's data file, in file order.
    func ids(_ manifest: Manifest) throws -> [Int] {
        try rows(manifest).map { ($0["id"] as! NSNumber).intValue }
    }

    /// The state file's JSON.
    func stateFile() throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: state + "/client=inc.json"))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }

    /// Every manifest.json under the bucket.
    func manifestCount() -> Int {
        (FileManager.default.enumerator(atPath: bucket)?.allObjects as? [String] ?? []).filter { $0.hasSuffix("manifest.json") }.count
    }

    /// The server's clock now, in the extractor's watermark form.
    func now(on connection: PostgresConnection? = nil) throws -> String {
        try (connection ?? self.connection).query("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')").scalar!
    }
}
