import StarpipeCore
import StarpipePostgres

/// A table of the client's database as the extractor reads it.
struct SourceTable {
    /// Name at the source, case preserved.
    var name: String
    var columns: [Manifest.Column]
    var primaryKey: [String]
    /// SQL types of the primary key columns, in key order.
    var keyTypes: [String]

    /// Reads a table's columns and primary key from the source catalog.
    static func describe(_ connection: PostgresConnection, schema: String, table: String) throws -> SourceTable {
        let relation = PostgresConnection.quoteIdentifier(schema) + "." + PostgresConnection.quoteIdentifier(table)
        let columns = try connection.query("""
            SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), (NOT a.attnotnull)::text
              FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum
            """, [relation])
        guard !columns.rows.isEmpty else {
            throw StarpipeError(.source, "source table \(schema).\(table) does not exist or has no columns")
        }
        let key = try connection.query("""
            SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
              FROM pg_catalog.pg_index i
              JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
             WHERE i.indrelid = pg_catalog.to_regclass($1) AND i.indisprimary
             ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum)
            """, [relation])
        return SourceTable(
            name: table,
            columns: columns.rows.map { Manifest.Column(name: $0[0]!, type: $0[1]!, nullable: $0[2] == "true") },
            primaryKey: key.rows.map { $0[0]! },
            keyTypes: key.rows.map { $0[1]! })
    }

    /// The keyset page query. Tables with a primary key page on it; others page on
    /// `(tableoid, ctid)`, which is stable within the extractor's single snapshot and unique even
    /// across the partitions (or inheritance children) that a parent table reads.
    func pageQuery(schema: String) -> (first: String, next: String, keyCount: Int) {
        let relation = PostgresConnection.quoteIdentifier(schema) + "." + PostgresConnection.quoteIdentifier(name)
        let row = "_starpipe_row"
        let json = "pg_catalog.row_to_json(\(row))::text"
        if primaryKey.isEmpty {
            let select = "SELECT \(row).tableoid::oid::text, \(row).ctid::text, \(json) FROM \(relation) AS \(row)"
            let order = "ORDER BY \(row).tableoid, \(row).ctid"
            return ("\(select) \(order) LIMIT $1",
                    "\(select) WHERE (\(row).tableoid, \(row).ctid) > ($2::oid, $3::tid) \(order) LIMIT $1", 2)
        }
        let keys = primaryKey.map { "\(row).\(PostgresConnection.quoteIdentifier($0))" }
        let select = "SELECT \(keys.map { "\($0)::text" }.joined(separator: ", ")), \(json) FROM \(relation) AS \(row)"
        let order = "ORDER BY \(keys.joined(separator: ", "))"
        let parameters = keyTypes.enumerated().map { "$\($0.offset + 2)::\($0.element)" }
        return ("\(select) \(order) LIMIT $1",
                "\(select) WHERE (\(keys.joined(separator: ", "))) > (\(parameters.joined(separator: ", "))) \(order) LIMIT $1",
                primaryKey.count)
    }
}
