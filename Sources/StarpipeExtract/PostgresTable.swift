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

    /// How a column's output text is written into the data file: the layout `row_to_json` gives it, so a file's
    /// bytes do not depend on where the JSON is encoded.
    enum Form: Equatable {
        /// `boolean`: `true` / `false`.
        case boolean
        /// The integer, float and numeric types: the text as a JSON number, or as a string when it is not one
        /// (`NaN`, `Infinity`, `-Infinity`).
        case number
        /// `timestamp without time zone`: the text with a `T` between date and time (`infinity` stays as it is).
        case timestamp
        /// `timestamp with time zone`: as ``timestamp``, the offset with its minutes (`+00:00`).
        case timestampWithTimeZone
        /// Every other type, as its output text in a JSON string (SQL NULL stays `null`): text, dates, uuid, bytea's
        /// hex, intervals; also json/jsonb (so a JSON string or a JSON `null` stays JSON), arrays (their literal,
        /// `{1,NULL}`), composites (their row literal, `(1,"a b")`, also when every field is NULL), enums and every
        /// other type outside pg_catalog. Always the type's output function, never a cast, which an extension could
        /// define to change the value.
        case string
    }

    /// How each column is written, in column order.
    var forms: [Form]

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
                   CASE WHEN t.typnamespace = 'pg_catalog'::pg_catalog.regnamespace THEN t.typname::text END AS builtin,
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
            forms: columns.rows.map { Self.form(ofBuiltin: $0[4]) })
    }

    /// The form of a column whose (base) type is `builtin` in pg_catalog, or nil for a type outside it.
    static func form(ofBuiltin builtin: String?) -> Form {
        switch builtin {
        case "bool": .boolean
        case "int2", "int4", "int8", "float4", "float8", "numeric": .number
        case "timestamp": .timestamp
        case "timestamptz": .timestampWithTimeZone
        default: .string
        }
    }

    /// The keyset of a full read: the primary key, or `(tableoid, ctid)` for a table without one, which is stable
    /// within the extractor's single snapshot and unique even across the partitions (or inheritance children) that a
    /// parent table reads.
    var fullKeyset: PostgresKeyset {
        primaryKey.isEmpty
            ? PostgresKeyset(expressions: ["_starpipe_row.tableoid", "_starpipe_row.ctid"], types: ["oid", "tid"])
            : PostgresKeyset(expressions: primaryKey.map { "_starpipe_row." + PostgresConnection.quoteIdentifier($0) }, types: keyTypes)
    }

    /// One keyset page as a `COPY … TO STDOUT` (text format): each line holds the keyset's values, then every column
    /// in order, each as its type's output text. `after` holds the previous page's last keyset values (their output
    /// text), which the statement carries as literals of the keyset's types.
    func pageCopy(schema: String, keyset: PostgresKeyset, limit: Int, after: [String]?) -> String {
        let relation = PostgresConnection.quoteIdentifier(schema) + "." + PostgresConnection.quoteIdentifier(name)
        let values = columns.map { "_starpipe_row.\(PostgresConnection.quoteIdentifier($0.name))" }
        let keys = keyset.expressions.joined(separator: ", ")
        var conditions = keyset.filter.map { [$0] } ?? []
        if let after {
            let literals = zip(after, keyset.types).map { Self.literal($0) + "::" + $1 }
            conditions.append("(\(keys)) > (\(literals.joined(separator: ", ")))")
        }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        return "COPY (SELECT \((keyset.expressions + values).joined(separator: ", ")) FROM \(relation) AS _starpipe_row\(filter) ORDER BY \(keys) LIMIT \(limit)) TO STDOUT"
    }

    /// `text` as a string literal (standard_conforming_strings is on in the snapshot's transaction).
    static func literal(_ text: String) -> String {
        var literal = "'"
        for character in text {
            if character == "'" { literal.append("'") }
            literal.append(character)
        }
        literal.append("'")
        return literal
    }
}
