import ArgumentParser
import Dispatch
import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipeExtract
import Synchronization

/// `starpipe extract`: read a client's Postgres into the bucket.
struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Extract tables of a client's Postgres database into the bucket (data.json, then manifest.json).")

    @Option(help: "Client database URL (libpq). Env STARPIPE_SOURCE_URL.")
    var source: String?

    @Option(help: "Client name used in bucket keys (lower-case letters, digits, _).")
    var client: String

    @Option(help: "Bucket URL: file:///var/starpipe/bucket, or s3://BUCKET/PREFIX?region=R&endpoint=URL&path_style=true|false (credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or ~/.aws/credentials). Env STARPIPE_BUCKET.")
    var bucket: String?

    @Option(help: "Source schema. Defaults to public.")
    var schema: String = "public"

    @Option(help: "Comma-separated tables to extract. Defaults to every table of the schema.")
    var tables: String?

    @Option(help: "Rows per keyset page. Defaults to 10000.")
    var pageSize: Int = 10_000

    @Option(help: "Snapshot date YYYY-MM-DD. Defaults to today (UTC).")
    var date: String?

    @Option(help: "Run id (letters, digits, . _ -). Defaults to a timestamp plus random suffix.")
    var runId: String?

    @OptionGroup var common: CommonOptions

    func run() throws {
        guard let sourceURL = source ?? Environment.value("STARPIPE_SOURCE_URL") else {
            throw ValidationError("give --source URL or set STARPIPE_SOURCE_URL")
        }
        guard let bucketURL = bucket ?? Environment.value("STARPIPE_BUCKET") else {
            throw ValidationError("give --bucket URL or set STARPIPE_BUCKET")
        }
        var snapshot: SnapshotDate?
        if let date {
            guard let parsed = SnapshotDate(iso: date) else { throw ValidationError("--date must be YYYY-MM-DD") }
            snapshot = parsed
        }
        let options = ExtractOptions(
            sourceURL: sourceURL, client: client, schema: schema,
            tables: tables.map { $0.split(separator: ",").map { String($0).trimmingWhitespace() } },
            pageSize: pageSize, snapshotDate: snapshot, runID: runId)
        var extractor = Extractor(options: options, bucket: try BucketFactory.open(bucketURL), logger: common.logger("starpipe.extract"))
        // SIGTERM or SIGINT stops the run between two rows: the upload in progress is aborted, no manifest follows.
        let cancelled = CancellationFlag()
        let sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { cancelled.set() }
            source.resume()
            return source
        }
        defer { sources.forEach { $0.cancel() } }
        extractor.isCancelled = { cancelled.isSet }
        let manifests = try extractor.run()
        print("extracted \(manifests.count) tables for client \(client), run \(options.runID), snapshot \(options.snapshotDate)")
        for manifest in manifests {
            print("  \(manifest.table): \(manifest.rowCount) rows, \(manifest.byteCount) bytes")
        }
    }
}

/// Set once from a signal handler, read for every row.
final class CancellationFlag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .relaxed) }
    var isSet: Bool { value.load(ordering: .relaxed) }
}

extension String {
    func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
