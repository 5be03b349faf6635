/// How far a run has got, handed to ``Extractor/progress`` while a table is read.
public struct ExtractProgress: Sendable {
    /// The table being read (starpipe's name).
    public var table: String
    /// 1-based position of the table in the run, and how many tables the run reads.
    public var tableIndex: Int, tableCount: Int
    /// Rows and bytes written so far for this table.
    public var rows: Int64, bytes: Int64
    /// The source's estimate of the table's rows (Postgres `reltuples`, MySQL `TABLE_ROWS`, SQLite's count); nil when
    /// it has none.
    public var estimatedRows: Int64?
    /// Seconds since the table's first row was asked for.
    public var seconds: Double
    /// True for the last report of a table, once its data file is committed.
    public var finished: Bool

    /// Rows per second so far.
    public var rowsPerSecond: Double { seconds > 0 ? Double(rows) / seconds : 0 }

    /// Seconds left at the current rate, when the estimate allows a guess.
    public var secondsLeft: Double? {
        guard let estimatedRows, estimatedRows > rows, rowsPerSecond > 0 else { return nil }
        return Double(estimatedRows - rows) / rowsPerSecond
    }
}
