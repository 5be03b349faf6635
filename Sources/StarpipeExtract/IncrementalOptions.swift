/// The incremental section of an extraction: which tables have a cursor, how far back each run reads again, and where
/// the watermarks are kept (docs/INCREMENTAL.md).
public struct IncrementalOptions: Sendable {
    /// Whether tables with a cursor are read incrementally. False reads every table in full but still records the
    /// high watermark of the tables that have a cursor, so incremental runs continue from that snapshot.
    public var enabled: Bool
    /// Cursors by starpipe table name (the source name lower-cased). A selected table without one is read in full.
    public var cursors: [String: TableCursor]
    /// Directory of the watermark state files (one per client), created when missing.
    public var stateDirectory: String
    /// How far before the previous high watermark each run starts reading again, in microseconds. Defaults to ten
    /// minutes: it covers application servers whose clocks lag the database's and prepared transactions.
    public var lookbackMicroseconds: Int64
    /// Subtracted from the safe point to make the high watermark, in microseconds. Defaults to one second.
    public var skewMarginMicroseconds: Int64

    /// Ten minutes.
    public static let defaultLookback: Int64 = 600_000_000
    /// One second.
    public static let defaultSkewMargin: Int64 = 1_000_000

    public init(enabled: Bool = true, cursors: [String: TableCursor], stateDirectory: String,
                lookbackMicroseconds: Int64 = Self.defaultLookback, skewMarginMicroseconds: Int64 = Self.defaultSkewMargin) {
        self.enabled = enabled
        self.cursors = cursors
        self.stateDirectory = stateDirectory
        self.lookbackMicroseconds = lookbackMicroseconds
        self.skewMarginMicroseconds = skewMarginMicroseconds
    }
}
