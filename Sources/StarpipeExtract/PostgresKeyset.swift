/// What a table's pages are ordered and resumed by: SQL expressions over the table's row (`_starpipe_row`), their
/// types (the previous page's last values are carried as literals of them), and a condition every row read meets.
struct PostgresKeyset {
    /// Expressions in order; together unique over the rows read.
    var expressions: [String]
    /// The SQL type of each expression, for its literal.
    var types: [String]
    /// A condition on the rows (a watermark, `IS NULL`); nil reads every row.
    var filter: String?
}
