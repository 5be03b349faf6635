import Crypto
import Foundation
import JSONStream
import StarpipeBucket
import StarpipeCore
import StarpipePostgres

/// Streams one data file into a new raw version: bucket bytes → JSON parser → COPY, with the
/// sha256, byte count and row count checked in the same pass. All of it runs in one transaction,
/// so a file that does not match its manifest leaves no row behind.
struct RawIngestion {
    let job: ClaimedJob
    let bucket: any Bucket
    let connection: PostgresConnection
    let chunkSize: Int
    /// Polled between chunks: an error abandons the load (shutdown deadline, or fenced out).
    var abandon: () -> (any Error)? = { nil }

    /// COPY data is sent in batches of about this many bytes.
    private static let batchBytes = 1 << 20

    /// Loads the file; throws ``StarpipeError`` (integrity, bad data) or ``PostgresError``.
    func run() throws -> Int64 {
        let manifest = job.manifest
        guard let size = try bucket.size(job.dataKey) else {
            throw StarpipeError(.integrity, "data file \(job.dataKey) is missing")
        }
        guard size == manifest.byteCount else {
            throw StarpipeError(.integrity,
                "byte count mismatch: data file \(job.dataKey) has \(size) bytes, its manifest says \(manifest.byteCount) (truncated or modified upload)")
        }
        // The shared parent table is created or extended in its own short transaction, so the long
        // loading transaction below holds nothing another worker might need.
        try connection.query("SELECT starpipe.prepare_raw($1, $2)", job.fenced)
        try connection.execute("BEGIN")
        do {
            let rows = try load()
            try connection.execute("COMMIT")
            return rows
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    private func load() throws -> Int64 {
        let manifest = job.manifest
        guard let copy = try connection.query("SELECT starpipe.begin_raw($1, $2)", job.fenced).scalar else {
            throw StarpipeError(.integrity, "begin_raw returned no COPY statement")
        }
        var encoder = CopyRowEncoder(columns: manifest.columns.map(\.name))
        var hasher = SHA256()
        var bytes: Int64 = 0
        var parseError: JSONStreamError?
        var batch: [UInt8] = []
        batch.reserveCapacity(Self.batchBytes + chunkSize)
        do {
            _ = try connection.copyIn(copy) { writer in
                try bucket.stream(job.dataKey, chunkSize: chunkSize) { chunk in
                    if let reason = abandon() { throw reason }
                    hasher.update(bufferPointer: chunk)
                    bytes += Int64(chunk.count)
                    // After a parse error the rest is still hashed, to tell corruption from bad content.
                    guard parseError == nil else { return }
                    do {
                        try encoder.feed(chunk, into: &batch)
                    } catch let error as JSONStreamError {
                        parseError = error
                        return
                    }
                    if batch.count >= Self.batchBytes {
                        try writer.send(batch)
                        batch.removeAll(keepingCapacity: true)
                    }
                }
                if parseError == nil {
                    do { try encoder.finish(into: &batch) } catch let error as JSONStreamError { parseError = error }
                }
                let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
                // Integrity first: a file that is not the one described cannot be judged on its content.
                guard digest == manifest.sha256, bytes == manifest.byteCount else {
                    throw StarpipeError(.integrity,
                        "sha256 mismatch: data file \(job.dataKey) (\(bytes) bytes read) does not match its manifest")
                }
                if let parseError {
                    throw StarpipeError(.badData, "data file \(job.dataKey): \(parseError)")
                }
                guard Int64(encoder.rowCount) == manifest.rowCount else {
                    throw StarpipeError(.integrity,
                        "row count mismatch: data file \(job.dataKey) has \(encoder.rowCount) rows, its manifest says \(manifest.rowCount)")
                }
                try writer.send(batch)
            }
        } catch let error as PostgresError where error.mayQuoteValues {
            throw StarpipeError(.badData, "data file \(job.dataKey): \(Self.locate(error))")
        }
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        let stored = try connection.query("SELECT starpipe.finish_raw($1, $2, $3, $4, $5)",
                                          job.fenced + [String(encoder.rowCount), String(bytes), digest]).scalar
        return Int64(stored ?? "0") ?? 0
    }

    /// Turns a COPY data error into "row N, column C: …" without the value the server quoted.
    static func locate(_ error: PostgresError) -> String {
        let state = error.sqlState ?? "22000"
        guard let context = error.context, let lineRange = context.range(of: ", line ") else {
            return "a value was rejected by the raw column type (SQLSTATE \(state))"
        }
        let afterLine = context[lineRange.upperBound...]
        let row = afterLine.prefix { $0.isNumber }
        var column = ""
        if let columnRange = afterLine.range(of: ", column ") {
            let rest = afterLine[columnRange.upperBound...]
            column = String(rest.prefix { $0 != ":" })
        }
        let what = column.isEmpty ? "" : ", column \(column)"
        return "row \(row)\(what): value does not fit the raw column type (SQLSTATE \(state))"
    }
}
