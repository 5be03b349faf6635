import Foundation
import StarpipeCore

/// A table of a client's SQLite file as the extractor reads it.
struct SQLiteTable: ExtractedTable {
    var name: String
    var columns: [Manifest.Column]
    var primaryKey: [String]
    /// The columns the keyset pages on: the primary key, or the rowid (under a name no column uses) when there is none.
    var pageKey: [String]
    /// How each column's values are read, in column order.
    var kinds: [Kind]

    /// What a column holds, from its declared type by SQLite's affinity rules (sqlite.org/datatype3.html §3.1), and
    /// the manifest type that carries it. SQLite lets any column hold any storage class, so each kind also says which
    /// storage classes it accepts; the extractor checks every value before it writes anything.
    enum Kind: Equatable {
        /// INTEGER affinity (the declared type contains `INT`): 64-bit integers, `bigint`.
        case integer
        /// REAL affinity (`REAL`, `FLOA`, `DOUB`): doubles, `double precision`.
        case real
        /// TEXT affinity (`CHAR`, `CLOB`, `TEXT`): UTF-8 text, `text`.
        case text
        /// Declared `BLOB`: bytes, `bytea`.
        case blob
        /// NUMERIC affinity: integers and doubles, as exact decimals, `numeric`.
        case numeric
        /// Declared `BOOLEAN`/`BOOL`: integers 0 and 1, `boolean`.
        case boolean
        /// Declared `DATE`: text `YYYY-MM-DD` naming a real day, `date`.
        case date
        /// Declared `DATETIME` or `TIMESTAMP`: text `YYYY-MM-DD HH:MM:SS[.ffffff]` (or with `T`), `timestamp without time zone`.
        case datetime

        /// The kind of a declared type, by SQLite's affinity rules; nil for no declared type.
        init?(declared: String) {
            let type = declared.uppercased().trimmingCharacters(in: .whitespaces)
            if type.isEmpty { return nil }
            if type.contains("INT") { self = .integer }
            else if type.contains("CHAR") || type.contains("CLOB") || type.contains("TEXT") { self = .text }
            else if type.contains("BLOB") { self = .blob }
            else if type.contains("REAL") || type.contains("FLOA") || type.contains("DOUB") { self = .real }
            else if type.hasPrefix("BOOL") { self = .boolean }
            else if type.contains("DATETIME") || type.hasPrefix("TIMESTAMP") { self = .datetime }
            else if type == "DATE" { self = .date }
            else { self = .numeric }
        }

        /// The kind of an untyped column, from the storage classes it holds (`typeof`); nil when they are mixed.
        init?(storageClasses: Set<String>) {
            switch storageClasses.subtracting(["null"]) {
            case []: self = .text
            case ["integer"]: self = .integer
            case ["real"]: self = .real
            case ["integer", "real"]: self = .numeric
            case ["text"]: self = .text
            case ["blob"]: self = .blob
            default: return nil
            }
        }

        /// The manifest type.
        var manifestType: String {
            switch self {
            case .integer: "bigint"
            case .real: "double precision"
            case .text: "text"
            case .blob: "bytea"
            case .numeric: "numeric"
            case .boolean: "boolean"
            case .date: "date"
            case .datetime: "timestamp without time zone"
            }
        }

        /// An SQL condition, true when the column's value `c` is one this kind carries (NULL always is).
        func accepts(_ c: String) -> String {
            switch self {
            case .integer: "typeof(\(c)) IN ('integer', 'null')"
            case .real: "typeof(\(c)) IN ('real', 'integer', 'null')"
            case .text: "typeof(\(c)) IN ('text', 'null')"
            case .blob: "typeof(\(c)) IN ('blob', 'null')"
            case .numeric: "typeof(\(c)) IN ('integer', 'real', 'null')"
            case .boolean: "(\(c) IS NULL OR typeof(\(c)) = 'integer' AND \(c) IN (0, 1))"
            case .date: "(\(c) IS NULL OR typeof(\(c)) = 'text' AND \(c) GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]' AND date(\(c), '+0 days') IS \(c))"
            case .datetime:
                """
                (\(c) IS NULL OR typeof(\(c)) = 'text' AND length(\(c)) IN (19, 21, 22, 23, 24, 25, 26) \
                AND \(c) GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9][ T][0-9][0-9]:[0-9][0-9]:[0-9][0-9]*' \
                AND datetime(substr(\(c), 1, 19), '+0 days') IS replace(substr(\(c), 1, 19), 'T', ' ') \
                AND (length(\(c)) = 19 OR substr(\(c), 20, 1) = '.' AND NOT substr(\(c), 21) GLOB '*[^0-9]*'))
                """
            }
        }

        /// What the refusal of a value says the column expects.
        var expectation: String {
            switch self {
            case .integer: "integers (bigint)"
            case .real: "numbers (double precision)"
            case .text: "text"
            case .blob: "blobs (bytea)"
            case .numeric: "numbers (numeric)"
            case .boolean: "the integers 0 and 1 (boolean)"
            case .date: "text dates YYYY-MM-DD (date)"
            case .datetime: "text date-times YYYY-MM-DD HH:MM:SS[.ffffff] (timestamp without time zone)"
            }
        }
    }
}
