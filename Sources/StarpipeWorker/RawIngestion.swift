import CopyEncoding
import Crypto
import Foundation
import JSONParsing
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
    /// Try binary COPY first (falls back to text for values not in canonical form). Defaults to true.
    var allowBinary = true
    /// Polled between chunks: an error abandons the load (shutdown deadline, or fenced out).
    var abandon: () -> (any Error)? = { nil }
    /// Called after each chunk with the bytes of the data file read so far, for the lease keeper to report as
    /// progress (a long load that moves is not stuck). Defaults to nothing.
    var progress: (Int64) -> Void = { _ in }

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
        if allowBinary {
            do {
                return try inTransaction { try load(binary: true) }
            } catch is BinaryCopyTranscoder.NotCanonical {
                // A value the binary path does not encode: load again in text, where Postgres decides.
            }
        }
        return try inTransaction { try load(binary: false) }
    }

    private func inTransaction(_ body: () throws -> Int64) throws -> Int64 {
        try connection.execute("BEGIN")
        do {
            let rows = try body()
            try connection.execute("COMMIT")
            return rows
        } catch {
            try? connection.execute("ROLLBACK")
            throw error
        }
    }

    private func load(binary allowBinary: Bool) throws -> Int64 {
        let manifest = job.manifest
        let target = try RawLoadTable.begin(job, on: connection)
        // Binary COPY when every raw column has a type the transcoder encodes; text otherwise.
        var transcoder = allowBinary ? target.binaryTypes.map(BinaryCopyTranscoder.init(types:)) : nil
        var encoder = CopyRowEncoder(columns: manifest.columns.map(\.name),
                                     base64Columns: Set(manifest.columns.filter { $0.encoding == Manifest.Column.base64 }.map(\.name)))
        var hasher = SHA256()
        var bytes: Int64 = 0
        var parseError: JSONStreamError?
        var batch: [UInt8] = []
        batch.reserveCapacity(Self.batchBytes + chunkSize)
        var binary: [UInt8] = []
        if transcoder != nil { binary.reserveCapacity(Self.batchBytes + chunkSize) }
        var digest = ""
        func send(_ writer: inout CopyWriter) throws {
            if transcoder != nil {
                binary.removeAll(keepingCapacity: true)
                try transcoder!.transcode(batch, into: &binary)
                try writer.send(binary)
            } else {
                try writer.send(batch)
            }
            batch.removeAll(keepingCapacity: true)
        }
        do {
            _ = try connection.copyIn(target.copyStatement(binary: transcoder != nil)) { writer in
                if transcoder != nil { try writer.send(BinaryCopyTranscoder.header) }
                try bucket.stream(job.dataKey, chunkSize: chunkSize) { chunk in
                    if let reason = abandon() { throw reason }
                    hasher.update(bufferPointer: chunk)
                    bytes += Int64(chunk.count)
                    progress(bytes)
                    // After a parse error the rest is still hashed, to tell corruption from bad content.
                    guard parseError == nil else { return }
                    do {
                        try encoder.feed(chunk, into: &batch)
                    } catch let error as JSONStreamError {
                        parseError = error
                        return
                    }
                    if batch.count >= Self.batchBytes { try send(&writer) }
                }
                if parseError == nil {
                    do { try encoder.finish(into: &batch) } catch let error as JSONStreamError { parseError = error }
                }
                digest = hasher.finalize().lowercaseHex
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
                try send(&writer)
                if transcoder != nil { try writer.send(BinaryCopyTranscoder.trailer) }
            }
        } catch let error as PostgresError where error.mayQuoteValues {
            throw StarpipeError(.badData, "data file \(job.dataKey): \(Self.locate(error))")
        }
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
