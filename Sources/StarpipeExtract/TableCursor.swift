/// How an incremental run orders and bounds one table: its cursor column or the coalesce of several.
public struct TableCursor: Sendable, Equatable {
    /// The cursor's columns, source names; more than one means `coalesce(first, second, …)`, e.g. `[updated_at,
    /// created_at]`. All must be `timestamp with time zone`, or all `timestamp without time zone`.
    public var columns: [String]
    /// For `timestamp without time zone` columns: the IANA zone the application writes them in (`UTC` for most
    /// frameworks). Required for them, refused for the others.
    public var timeZone: String?
    /// What to do with rows whose cursor is NULL.
    public var nullCursor: NullCursorPolicy

    public init(columns: [String], timeZone: String? = nil, nullCursor: NullCursorPolicy = .fail) {
        self.columns = columns
        self.timeZone = timeZone
        self.nullCursor = nullCursor
    }
}
