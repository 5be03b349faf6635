extension Manifest {
    /// What an incremental file covers (present only with `mode: incremental`, absent in full snapshots and in
    /// manifests written before incremental mode). The file holds every row whose cursor is at or after
    /// ``lowWatermark`` in the snapshot, rows past ``highWatermark`` included; the next run starts again at
    /// ``highWatermark`` minus its lookback, so rows near the boundary arrive twice, which the upsert makes harmless.
    public struct Incremental: Codable, Sendable, Equatable {
        /// The cursor's source columns; several mean `coalesce` of them, in order.
        public var cursor: [String]
        /// The lowest cursor value read (inclusive), RFC 3339 UTC; nil on a table's first incremental run, which
        /// reads every row.
        public var lowWatermark: String?
        /// The safe point this run establishes, RFC 3339 UTC: every row whose cursor is before it was committed
        /// and visible to the snapshot.
        public var highWatermark: String
        /// The NULL-cursor policy of the run: `include`, `exclude` or `fail`.
        public var nullCursor: String

        enum CodingKeys: String, CodingKey {
            case cursor
            case lowWatermark = "low_watermark"
            case highWatermark = "high_watermark"
            case nullCursor = "null_cursor"
        }

        public init(cursor: [String], lowWatermark: String?, highWatermark: String, nullCursor: String) {
            self.cursor = cursor
            self.lowWatermark = lowWatermark
            self.highWatermark = highWatermark
            self.nullCursor = nullCursor
        }
    }
}
