import StarpipeCore
import StarpipePostgres

/// A table of the client's Postgres database as the extractor reads it.
struct PostgresTable: ExtractedTable {
    /// Name at the source, case preserved.
    var name: String
    var columns: [Manifest.Column]
    var primaryKey: [String]
    /// SQL types of the primary key columns, in key order.
    var keyTypes: [String]

    /// How a column's values are written into the data file.
    enum Carriage: String {
        /// As `row_to_json` writes the column (numbers, booleans, strings; dates and timestamps in ISO form).
        case native
        /// As the type's output text in a JSON string (SQL NULL stays `null`): json/jsonb (so a JSON string or a JSON
        /// `null` stays JSON), arrays (their literal, `{1,NULL}`), enums and every other type outside pg_catalog.
        /// Never through a cast: an extension's cast to json or text could change the value.
        case text
        /// Composites, as their row literal (`(1,"a b")`); `IS NULL` would be true for `(,)`, so they go through
        /// their cast to text, which is their output.
        case composite
    }

    /// How each column is written, in column order.
    var carriages: [Carriage]

    /// pg_catalog types whose text does not reproduce the value in another database: the reg* types name objects
    /// of the source's catalog (an OID underneath), aclitem names its roles, and the planner's and index
    /// summaries' types have no input function at all.
    static let uncarriedTypes: Set<String> = [
        "regclass", "regcollation", "regconfig", "regdictionary", "regnamespace", "regoper", "regoperator", "regproc",
        "regprocedure", "regrole", "regtype", "aclitem", "pg_node_tree", "pg_ndistinct", "pg_dependencies", "pg_mcv_list",
        "pg_brin_bloom_summary", "pg_brin_minmax_multi_summary", "gtsvector",
    ]

    /// Reads a table's columns and primary key from the source catalog. A domain column is described by its base
    /// type (with the domain's modifier) and keeps the domain's name as `source_type`. Throws, naming the table
    /// and column, for a type whose values cannot be carried without loss (``uncarriedTypes``, also as array elements).
    static func describe(_ connection: PostgresConnection, schema: String, table: String) throws -> PostgresTable {
        let relation = PostgresConnection.quoteIdentifier(schema) + "." + PostgresConnection.quoteIdentifier(table)
        // Domains over domains resolve to the base type; the modifier is the innermost domain's (a domain
        // column itself carries none).
        let columns = try connection.query("""
            WITH RECURSIVE chain AS (
                SELECT a.attnum, a.attname, a.attnotnull, a.atttypid AS declared, a.atttypmod AS declared_mod,
                       a.atttypid AS typid, a.atttypmod AS typmod
                  FROM pg_catalog.pg_attribute a
                 WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
                UNION ALL
                SELECT c.attnum, c.attname, c.attnotnull, c.declared, c.declared_mod, t.typbasetype, t.typtypmod
                  FROM chain c JOIN pg_catalog.pg_type t ON t.oid = c.typid
                 WHERE t.typtype = 'd'
            )
            SELECT c.attname,
                   pg_catalog.format_type(c.typid, c.typmod) AS type,
                   (NOT c.attnotnull)::text AS nullable,
                   pg_catalog.format_type(c.declared, c.declared_mod) AS declared,
                   CASE WHEN t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace AND t.typtype IN ('b', 'r', 'm')
                             AND t.typcategory <> 'A' AND t.typname NOT IN ('json', 'jsonb') THEN 'native'
                        WHEN t.typtype = 'c' THEN 'composite'
                        ELSE 'text' END AS carriage,
                   (SELECT u.typname FROM pg_catalog.pg_type u
                     WHERE u.oid IN (t.oid, CASE WHEN t.typcategory = 'A' THEN t.typelem END)
                       AND u.typnamespace = 'pg_catalog'::pg_catalog.regnamespace
                       AND u.typname = ANY ($2::text[]) LIMIT 1) AS uncarried
              FROM chain c JOIN pg_catalog.pg_type t ON t.oid = c.typid
             WHERE t.typtype <> 'd'
             ORDER BY c.attnum
            """, [relation, "{" + uncarriedTypes.sorted().joined(separator: ",") + "}"])
        guard !columns.rows.isEmpty else {
            throw StarpipeError(.source, "source table \(schema).\(table) does not exist or has no columns")
        }
        for row in columns.rows {
            if let type = row[5] {
                throw StarpipeError(.source, "source table \(schema).\(table) column \(row[0]!) has type \(row[3]!), whose values (\(type)) cannot be carried to another database without loss; nothing was written. Leave the table out (--tables) or change the column's type")
            }
        }
        let key = try connection.query("""
            SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
              FROM pg_catalog.pg_index i
              JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
             WHERE i.indrelid = pg_catalog.to_regclass($1) AND i.indisprimary
             ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum)
            """, [relation])
        return PostgresTable(
            name: table,
            columns: columns.rows.map {
                Manifest.Column(name: $0[0]!, type: $0[1]!, nullable: $0[2] == "true", sourceType: $0[3] == $0[1] ? nil : $0[3])
            },
            primaryKey: key.rows.map { $0[0]! },
            keyTypes: key.rows.map { $0[1]! },
            carriages: columns.rows.map { Carriage(rawValue: $0[4]!)! })
    }

    /// The keyset page query. Tables with a primary key page on it; others page on
    /// `(tableoid, ctid)`, which is stable within the extractor's single snapshot and unique even
    /// across the partitions (or inheritance children) that a parent table reads.
    func pageQuery(schema: String) -> (first: String, next: String, keyCount: Int) {
        let row = "_starpipe_row"
        let (from, json) = rowSource(schema: schema)
        if primaryKey.isEmpty {
            let select = "SELECT \(row).tableoid::oid::text, \(row).ctid::text, \(json) FROM \(from)"
            let order = "ORDER BY \(row).tableoid, \(row).ctid"
            return ("\(select) \(order) LIMIT $1",
                    "\(select) WHERE (\(row).tableoid, \(row).ctid) > ($2::oid, $3::tid) \(order) LIMIT $1", 2)
        }
        let keys = primaryKey.map { "\(row).\(PostgresConnection.quoteIdentifier($0))" }
        let select = "SELECT \(keys.map { "\($0)::text" }.joined(separator: ", ")), \(json) FROM \(from)"
        let order = "ORDER BY \(keys.joined(separator: ", "))"
        let parameters = keyTypes.enumerated().map { "$\($0.offset + 2)::\($0.element)" }
        return ("\(select) \(order) LIMIT $1",
                "\(select) WHERE (\(keys.joined(separator: ", "))) > (\(parameters.joined(separator: ", "))) \(order) LIMIT $1",
                primaryKey.count)
    }

    /// The FROM clause every page query reads (the table as `_starpipe_row`, with its values as
    /// `_starpipe_values`) and the expression of one row's JSON object.
    func rowSource(schema: String) -> (from: String, json: String) {
        let relation = PostgresConnection.quoteIdentifier(schema) + "." + PostgresConnection.quoteIdentifier(name)
        let row = "_starpipe_row"
        // row_to_json over a lateral subselect of one expression per column (no argument limit, unlike
        // json_build_object): native columns as they are, the others as their text.
        let values = zip(columns, carriages).map { column, carriage in
            let name = PostgresConnection.quoteIdentifier(column.name)
            switch carriage {
            case .native: return "\(row).\(name) AS \(name)"
            case .text: return "CASE WHEN \(row).\(name) IS NULL THEN NULL ELSE pg_catalog.format('%s', \(row).\(name)) END AS \(name)"
            case .composite: return "\(row).\(name)::text AS \(name)"
            }
        }
        let from = "\(relation) AS \(row) CROSS JOIN LATERAL (SELECT \(values.joined(separator: ", "))) AS _starpipe_values"
        let json = "pg_catalog.row_to_json(_starpipe_values)::text"
        return (from, json)
    }
}
