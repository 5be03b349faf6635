import StarpipeCore

/// A table of a client's MySQL/MariaDB database as the extractor reads it.
struct MariaDBTable: ExtractedTable {
    var name: String
    var columns: [Manifest.Column]
    var primaryKey: [String]
    /// How each column's values are read, in column order.
    var kinds: [Kind]
    /// How each primary key column's value is written back into the next page's condition; nil when some key column
    /// cannot be compared exactly, and for keyless tables: those are read by one streamed query instead.
    var keyLiterals: [KeyLiteral]?
    /// Per column: `CONVERT(… USING charset) COLLATE collation` around a string key literal, so the keyset compares
    /// as `ORDER BY` sorts.
    var collations: [String: (charset: String, collation: String)]

    /// How a column's text (MySQL's text protocol) becomes JSON.
    enum Kind: Equatable {
        /// Integers, decimals, doubles, years: the server's digits as a JSON number.
        case number
        /// FLOAT, selected as DOUBLE (exact; FLOAT's own text keeps 6 digits), as a JSON number; manifest `real`.
        case float
        /// BIT(n), selected as its n binary digits, as a string.
        case bits(Int)
        /// Character strings, ENUM, SET, TIME, UUID, INET: a JSON string.
        case string
        /// Binary strings and BLOBs: base64 in a JSON string (the manifest column's `encoding`), bytea in raw.
        case bytes
        /// DATE: a string; the zero date as `-infinity`.
        case date
        /// DATETIME: an ISO string without offset; the zero date-time as `-infinity`.
        case datetime
        /// TIMESTAMP, read in UTC: an ISO string with `+00:00`; the zero timestamp as `-infinity`.
        case timestamp
        /// JSON: its text inside a JSON string, as the Postgres extractor writes json.
        case json
    }

    /// A key value in SQL, for the next page's `WHERE (key) > (…)`.
    enum KeyLiteral {
        /// Digits as they are.
        case number
        /// A quoted, escaped string in the column's charset and collation.
        case string
        /// `X'…'`.
        case bytes
    }

    /// MySQL types whose values the extractor does not carry: spatial values (their text is the server's WKB).
    static let uncarriedTypes: Set<String> = [
        "geometry", "point", "linestring", "polygon", "multipoint", "multilinestring", "multipolygon",
        "geometrycollection",
    ]

    /// The manifest type and the reading of a column, from information_schema.COLUMNS; nil for an unknown type.
    static func mapping(dataType: String, columnType: String, precision: Int?, scale: Int?, datetimePrecision: Int?,
                        length: Int?, isJSON: Bool) -> (type: String, kind: Kind)? {
        let unsigned = columnType.lowercased().contains("unsigned")
        switch dataType.lowercased() {
        case "tinyint": return ("smallint", .number)
        case "smallint": return (unsigned ? "integer" : "smallint", .number)
        case "mediumint": return ("integer", .number)
        case "int", "integer": return (unsigned ? "bigint" : "integer", .number)
        case "bigint": return (unsigned ? "numeric(20,0)" : "bigint", .number)
        case "year": return ("smallint", .number)
        case "decimal", "numeric":
            return ("numeric(\(precision ?? 10),\(scale ?? 0))", .number)
        case "float": return ("real", .float)
        case "double", "real": return ("double precision", .number)
        case "bit": return ("bit(\(precision ?? 1))", .bits(precision ?? 1))
        case "char", "varchar":
            if isJSON { return ("json", .json) }
            return (length.map { "character varying(\($0))" } ?? "text", .string)
        case "tinytext", "text", "mediumtext", "longtext":
            return (isJSON ? "json" : "text", isJSON ? .json : .string)
        case "json": return ("json", .json)
        case "enum", "set": return ("text", .string)
        case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob": return ("bytea", .bytes)
        case "date": return ("date", .date)
        case "datetime": return ("timestamp(\(datetimePrecision ?? 0)) without time zone", .datetime)
        case "timestamp": return ("timestamp(\(datetimePrecision ?? 0)) with time zone", .timestamp)
        case "time": return ("interval", .string)
        case "uuid": return ("uuid", .string)
        case "inet4", "inet6": return ("inet", .string)
        default: return nil
        }
    }
}
