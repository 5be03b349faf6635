import StarpipeCore

/// Sources that cannot read incrementally yet (SQLite) refuse before anything is read.
extension ExtractionSource {
    func safePoint() throws -> Watermark {
        throw StarpipeError(.configuration, "incremental extraction is not available for \(kind) sources yet; leave the incremental section out of the config")
    }

    func nullCursorRows(of table: Table, cursor: TableCursor) throws -> Int64 {
        throw StarpipeError(.configuration, "incremental extraction is not available for \(kind) sources yet")
    }

    func readRows(of table: Table, cursor: TableCursor, from low: Watermark?, includingNullCursor: Bool, pageSize: Int,
                  _ row: (UnsafeRawBufferPointer) throws -> Void) throws {
        throw StarpipeError(.configuration, "incremental extraction is not available for \(kind) sources yet")
    }
}
