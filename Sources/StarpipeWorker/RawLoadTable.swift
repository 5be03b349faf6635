import CopyEncoding
import Foundation
import StarpipeCore
import StarpipePostgres

/// The loading table of one attempt, as `starpipe.begin_raw` describes it: where the COPY goes, its
/// columns in COPY order (the manifest's, then `_source_row`), their raw types, and whether every one
/// of those types is one the worker may send in binary (`starpipe._binary_copy_types()`).
struct RawLoadTable: Sendable, Equatable {
    /// The schema-qualified, quoted table name (`raw_acme._load_7_12`).
    var table: String
    /// Column names in COPY order; the last one is `_source_row`.
    var columns: [String]
    /// `format_type` names of the columns, in the same order.
    var types: [String]
    /// True when the extension allows binary COPY for every column type.
    var binaryCopy: Bool

    /// Calls `begin_raw` on `connection` (inside the load's transaction).
    static func begin(_ job: ClaimedJob, on connection: PostgresConnection) throws -> RawLoadTable {
        let result = try connection.query("""
            SELECT load_table, pg_catalog.to_json(columns)::text AS columns, pg_catalog.to_json(types)::text AS types, binary_copy
              FROM starpipe.begin_raw($1, $2)
            """, job.fenced)
        guard let table = result.value(0, "load_table"), let columns = result.value(0, "columns"),
              let types = result.value(0, "types") else {
            throw StarpipeError(.integrity, "begin_raw returned no loading table for job \(job.id)")
        }
        let decoder = JSONDecoder()
        return RawLoadTable(table: table,
                            columns: try decoder.decode([String].self, from: Data(columns.utf8)),
                            types: try decoder.decode([String].self, from: Data(types.utf8)),
                            binaryCopy: result.value(0, "binary_copy") == "t")
    }

    /// `COPY table (columns) FROM STDIN`, in binary format when asked.
    func copyStatement(binary: Bool) -> String {
        let list = columns.map(PostgresConnection.quoteIdentifier).joined(separator: ", ")
        return "COPY \(table) (\(list)) FROM STDIN" + (binary ? " WITH (FORMAT binary)" : "")
    }

    /// The binary encoders of the client's columns (the row number is the transcoder's own), or nil when the
    /// extension does not allow binary COPY or a type has no encoder here.
    var binaryTypes: [BinaryCopyType]? {
        guard binaryCopy, columns.last == "_source_row" else { return nil }
        let encoders = types.dropLast().compactMap(BinaryCopyType.init(sqlName:))
        return encoders.count == types.count - 1 ? encoders : nil
    }
}
