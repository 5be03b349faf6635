import ArgumentParser
import Foundation
import StarpipePostgres

/// `starpipe verify JOB`: recompute a job's digests, raw version → staging → production.
struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check that a job's raw version, staged rows and production rows still match the digests recorded for it.",
        discussion: """
            Each stage is recomputed from the database and compared with the digest taken when it was written. \
            Production rows that later promotions changed or deleted count as those promotions found them, so \
            a row changed outside starpipe is caught even under later jobs. Differences are named by source row \
            number, never by value. Exits 1 when a stage disagrees, 0 otherwise (a stage that cannot be \
            recomputed, say after retention dropped the raw version, is reported and not counted). Needs starpipe_admin.
            """)

    @Argument(help: "The job id.")
    var job: Int64

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func run() throws {
        let connection = try database.connect()
        let rows = try connection.query(
            "SELECT stage, recorded, recomputed, CASE WHEN agrees THEN 'yes' WHEN NOT agrees THEN 'NO' ELSE '-' END, detail::text "
                + "FROM starpipe.verify($1)", [String(job)]).rows
        if json {
            let objects: [[String: Any]] = rows.map { row in
                var object: [String: Any] = ["stage": row[0] ?? ""]
                switch row[3] {
                case "yes": object["agrees"] = true
                case "NO": object["agrees"] = false
                default: object["agrees"] = NSNull()
                }
                object["recorded"] = row[1] ?? NSNull()
                object["recomputed"] = row[2] ?? NSNull()
                object["detail"] = (row[4].flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) }) ?? NSNull()
                return object
            }
            let data = try JSONSerialization.data(withJSONObject: ["job": job, "stages": objects], options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(TextTable(columns: ["stage", "agrees", "recorded", "recomputed", "detail"],
                            rows: rows.map { [$0[0] ?? "", $0[3] ?? "", $0[1] ?? "", $0[2] ?? "", $0[4] ?? ""] }).render())
        }
        if rows.contains(where: { $0[3] == "NO" }) {
            throw ExitCode(1)
        }
    }
}
