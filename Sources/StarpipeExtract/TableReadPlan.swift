/// How one table is read in a run, decided for every table before anything is written.
struct TableReadPlan {
    /// The table's cursor, when the config gives it one.
    var cursor: TableCursor?
    /// Whether the table is read incrementally (else in full).
    var incremental: Bool
    /// Where reading starts: the previous high watermark minus the lookback; nil reads every row.
    var low: Watermark?
    /// The watermark recorded once the table's manifest is committed; nil when the table has no cursor.
    var high: Watermark?
    /// The table's key in the state file.
    var stateKey: String
    /// Rows with a NULL cursor, counted for the `exclude` policy's log line.
    var nullCursorRows: Int64?

    /// A full read with no watermark.
    static func full(stateKey: String) -> TableReadPlan {
        TableReadPlan(cursor: nil, incremental: false, low: nil, high: nil, stateKey: stateKey, nullCursorRows: nil)
    }
}
