/// The rows of a finished statement, as text (libpq's text result format).
public struct PostgresResult: Sendable {
    /// Column names, in result order.
    public let columns: [String]
    /// Rows; `nil` is SQL NULL.
    public let rows: [[String?]]
    /// Rows affected, for INSERT/UPDATE/DELETE/COPY; 0 otherwise.
    public let affectedRows: Int

    public init(columns: [String], rows: [[String?]], affectedRows: Int) {
        self.columns = columns
        self.rows = rows
        self.affectedRows = affectedRows
    }

    /// The value of `column` in row `row`, or nil when NULL or absent.
    public func value(_ row: Int, _ column: String) -> String? {
        guard row < rows.count, let index = columns.firstIndex(of: column) else { return nil }
        return rows[row][index]
    }

    /// The first column of the first row, the usual shape of `SELECT f(...)`.
    public var scalar: String? { rows.first?.first ?? nil }
}
