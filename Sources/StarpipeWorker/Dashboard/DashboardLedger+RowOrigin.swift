import Foundation
import StarpipePostgres

extension DashboardLedger {
    /// Where a production row came from: `starpipe.row_origin(target, key)` as JSON text (the job that last wrote
    /// it, its bucket files and source row, and the earlier jobs that touched it; no key and no value). `target` is
    /// one of the dashboard's `targets`, `key` the values of its conflict-key columns as typed.
    ///
    /// Throws ``DashboardServerError`` with starpipe's own refusal (an SP-class error names the table and its key
    /// columns, never what was given) when the lookup is refused, and the database error otherwise, which the caller
    /// must not show beyond its SQLSTATE.
    public func rowOrigin(target: String, key: [String: String]) throws -> String {
        let keyJSON = String(decoding: try JSONSerialization.data(withJSONObject: key, options: [.sortedKeys]), as: UTF8.self)
        do {
            return try withConnection { connection in
                guard let json = try connection.query("SELECT starpipe.row_origin($1, $2::jsonb)::text", [target, keyJSON]).scalar else {
                    throw DashboardServerError("starpipe.row_origin() returned nothing")
                }
                return json
            }
        } catch let error as PostgresError where error.sqlState?.hasPrefix("SP") == true {
            throw DashboardServerError(error.serverMessage)
        }
    }
}
