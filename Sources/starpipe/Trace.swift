import ArgumentParser
import Foundation
import StarpipePostgres

/// `starpipe trace JOB`: one job through every stage, from the ledger (starpipe.trace); `starpipe trace --row
/// SCHEMA.TABLE KEY=VALUE…`: a production row back to the jobs, files and source rows that wrote it (starpipe.trace_row).
struct Trace: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow one job through every stage, or one production row back to the files and rows it came from.",
        discussion: """
            starpipe trace JOB prints the bucket keys and manifest, the schema version and any drift diff, the \
            mapping version, the rows at each stage (raw, staged, rejected, deduplicated, promoted), rejects by rule, \
            the promotion audit, and every event with the seconds until the next one (an unfinished job's last span \
            runs to now). Counts, names and row numbers only, never a row's values. Needs starpipe_worker or \
            starpipe_admin.

            starpipe trace --row SCHEMA.TABLE KEY=VALUE... names the production row by its conflict key (every key \
            column, as the mapping lists them) and prints the job that last wrote it, its bucket data file and the \
            row number inside that file, and every earlier job that inserted, changed, kept or deleted it. It reads \
            the conflict audit and the staging tables kept with the raw versions, and says when retention has \
            dropped the one that would name the insert. Needs starpipe_admin.
            """)

    @Option(name: .customLong("row"), help: "Trace a production row of this table (SCHEMA.TABLE) instead of a job.")
    var table: String?

    @Argument(help: "The job id; with --row, the row's conflict key as KEY=VALUE, one per key column.")
    var arguments: [String] = []

    @Flag(help: "Print the JSON document (starpipe.trace or starpipe.trace_row) instead of text.")
    var json = false

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        if table == nil {
            guard arguments.count == 1, Int64(arguments[0]) != nil else {
                throw ValidationError("give one job id, or --row SCHEMA.TABLE KEY=VALUE...")
            }
        } else {
            guard !arguments.isEmpty else { throw ValidationError("--row needs the row's conflict key as KEY=VALUE") }
            _ = try key()
        }
    }

    /// The KEY=VALUE arguments as a JSON object of strings.
    private func key() throws -> [String: String] {
        var key: [String: String] = [:]
        for argument in arguments {
            guard let equals = argument.firstIndex(of: "="), equals != argument.startIndex else {
                throw ValidationError("\(argument): a key column is given as KEY=VALUE")
            }
            let name = String(argument[..<equals])
            guard key.updateValue(String(argument[argument.index(after: equals)...]), forKey: name) == nil else {
                throw ValidationError("key column \(name) is given twice")
            }
        }
        return key
    }

    func run() throws {
        let connection = try database.connect()
        let document: String
        if let table {
            let key = String(decoding: try JSONSerialization.data(withJSONObject: try key(), options: [.sortedKeys]), as: UTF8.self)
            guard let found = try connection.query("SELECT starpipe.trace_row($1, $2::jsonb)::text", [table, key]).scalar else {
                throw ValidationError("starpipe.trace_row returned nothing")
            }
            document = found
        } else {
            let job = arguments[0]
            // Checked first: the database's error (P0002) reaches the CLI without its message.
            guard try connection.query("SELECT EXISTS (SELECT 1 FROM starpipe.job WHERE job_id = $1)", [job]).scalar == "t",
                  let found = try connection.query("SELECT starpipe.trace($1)::text", [job]).scalar else {
                throw ValidationError("job \(job) does not exist")
            }
            document = found
        }
        if json {
            print(document)
            return
        }
        guard let trace = try JSONSerialization.jsonObject(with: Data(document.utf8)) as? [String: Any] else {
            throw ValidationError("the trace is not a JSON object")
        }
        print(table == nil ? TraceReport(trace).render() : RowTraceReport(trace).render())
    }
}

/// The text form of a starpipe.trace_row document.
struct RowTraceReport {
    let trace: [String: Any]

    init(_ trace: [String: Any]) { self.trace = trace }

    /// A list as its items joined by commas; anything else as TraceReport prints it.
    private func text(_ value: Any?) -> String {
        if let list = value as? [Any] { return list.map { text($0) }.joined(separator: ", ") }
        return TraceReport.text(value)
    }

    private func describe(_ entry: [String: Any]) -> String {
        var line = "job \(text(entry["job_id"])) (\(text(entry["client"])).\(text(entry["table"])), snapshot "
            + "\(text(entry["snapshot_date"])), run \(text(entry["run_id"]))) \(text(entry["action"]))"
        if let changed = entry["changed_columns"] as? [Any], !changed.isEmpty { line += " \(text(changed))" }
        if entry["action"] as? String == "kept", let policy = entry["policy"] as? String { line += " (\(policy))" }
        line += " at \(text(entry["at"]))"
        return line
    }

    private func file(_ entry: [String: Any]) -> String {
        "file \(text(entry["data_key"]))" + (entry["source_row"] is NSNumber ? ", row \(text(entry["source_row"]))" : "")
            + "  (manifest \(text(entry["manifest_key"])))"
    }

    func render() -> String {
        var lines: [String] = []
        let present: String
        switch trace["present"] {
        case let flag as Bool: present = flag ? "in production" : "not in production"
        default: present = "production not readable here"
        }
        lines.append("\(text(trace["target"])) \(text(trace["key"])): \(present)")
        if let last = trace["last_write"] as? [String: Any] {
            lines.append("last written by " + describe(last))
            lines.append("  " + file(last))
        } else {
            lines.append("no promotion into this table wrote this key")
        }
        if let through = trace["insert_uncertain_through_job"] as? NSNumber {
            lines.append("note: the staging of job \(through) and earlier jobs is no longer kept (raw retention): "
                + "the row may have been inserted by one of them")
        }
        if let history = trace["history"] as? [[String: Any]], !history.isEmpty {
            lines.append("")
            lines.append("history (newest first):")
            for entry in history {
                lines.append("  " + describe(entry))
                lines.append("    " + file(entry))
            }
        }
        return lines.joined(separator: "\n")
    }
}

/// The text form of a starpipe.trace document.
struct TraceReport {
    let trace: [String: Any]

    init(_ trace: [String: Any]) { self.trace = trace }

    private func text(_ value: Any?) -> String { Self.text(value) }

    /// A document value as text: "-" for null, strings and numbers as they are, anything else as compact JSON.
    static func text(_ value: Any?) -> String {
        switch value {
        case nil, is NSNull: return "-"
        case let string as String: return string
        case let number as NSNumber: return number.stringValue
        default:
            guard let data = try? JSONSerialization.data(withJSONObject: value!, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]) else {
                return "\(value!)"
            }
            return String(decoding: data, as: UTF8.self)
        }
    }

    private func seconds(_ value: Any?) -> String {
        guard let number = value as? NSNumber else { return "-" }
        return String(format: "%.3f", number.doubleValue)
    }

    private func object(_ key: String) -> [String: Any]? { trace[key] as? [String: Any] }

    func render() -> String {
        var lines: [String] = []
        lines.append("job \(text(trace["job_id"]))  \(text(trace["client"])).\(text(trace["table"]))  "
            + "snapshot \(text(trace["snapshot_date"]))  run \(text(trace["run_id"]))")
        lines.append("status \(text(trace["status"])) at stage \(text(trace["stage"]))  "
            + "attempts \(text(trace["attempts"]))/\(text(trace["max_attempts"]))  worker \(text(trace["worker"]))  "
            + "elapsed \(seconds(trace["elapsed_seconds"]))s")
        if let error = trace["error"] as? String {
            lines.append("error: \(error)")
            if let detail = trace["error_detail"], !(detail is NSNull) { lines.append("error detail: \(text(detail))") }
        }
        if let duplicate = trace["duplicate_of"], !(duplicate is NSNull) { lines.append("duplicate of job \(text(duplicate))") }
        let bucket = object("bucket") ?? [:]
        lines.append("bucket: manifest \(text(bucket["manifest_key"]))")
        lines.append("        data     \(text(bucket["data_key"]))")
        let manifest = object("manifest") ?? [:]
        let columns = (manifest["columns"] as? [[String: Any]])?.count
        lines.append("manifest: \(text(manifest["row_count"])) rows, \(text(manifest["byte_count"])) bytes, "
            + "format \(text(manifest["format"])), mode \(text(manifest["mode"] ?? "full")), \(columns.map(String.init) ?? "-") columns, "
            + "sha256 \(text(manifest["sha256"]))")
        if let schema = object("schema") {
            var line = "schema: version \(text(schema["version"]))"
            if schema["new_with_this_job"] as? Bool == true { line += " (first seen with this job)" }
            if let diff = schema["diff"] as? [String: Any] {
                let parts = ["added", "removed", "retyped", "nullability", "rename_candidates"].compactMap { key -> String? in
                    guard let list = diff[key] as? [Any], !list.isEmpty else { return nil }
                    return "\(key) \(text(list))"
                }
                line += "  drift from version \(text(diff["from_version"])): " + (parts.isEmpty ? "primary key" : parts.joined(separator: "; "))
                line += schema["accepted_at"] is String ? "  accepted \(text(schema["accepted_at"]))" : "  not accepted"
            }
            lines.append(line)
        } else {
            lines.append("schema: not recorded yet")
        }
        if let mapping = object("mapping") {
            lines.append("mapping: version \(text(mapping["version"])) → \(text(mapping["target_schema"])).\(text(mapping["target"]))"
                + "  promotion \(text(mapping["promotion"]))")
        } else {
            lines.append("mapping: none applied to this job yet")
        }
        let rows = object("rows") ?? [:]
        lines.append("rows: " + ["manifest", "raw", "staged", "rejected", "deduplicated", "promoted", "inserted", "updated", "deleted"]
            .map { "\($0) \(text(rows[$0]))" }.joined(separator: "  "))
        if let rejects = trace["rejects"] as? [[String: Any]], !rejects.isEmpty {
            lines.append("")
            lines.append("rejects by rule:")
            lines.append(TextTable(columns: ["rule", "column", "sqlstate", "rows", "unresolved", "first source row"],
                                   rows: rejects.map { r in
                                       [text(r["rule"]), text(r["target_column"]), text(r["sqlstate"]), text(r["rows"]),
                                        text(r["unresolved"]), text(r["first_source_row"])]
                                   }).render())
        }
        if let promotion = object("promotion") {
            lines.append("")
            lines.append("promotion at \(text(promotion["at"])) by \(text(promotion["actor"]))"
                + (promotion["manual"] as? Bool == true ? " (manual)" : "") + ", fence \(text(promotion["fence"])):")
            lines.append("  " + ["staged", "inserted", "updated", "unchanged", "kept", "deleted", "conflicts", "conflicts_applied"]
                .map { "\($0) \(text(promotion[$0]))" }.joined(separator: "  "))
            lines.append("  target \(text(promotion["target"]))  policy \(text(promotion["policy"]))  mode \(text(promotion["mode"]))"
                + "  mapping version \(text(promotion["mapping_version"]))  skipped \(text(promotion["skipped"]))")
        }
        if let events = trace["events"] as? [[String: Any]] {
            lines.append("")
            lines.append("events:")
            lines.append(TextTable(columns: ["at", "event", "status", "stage", "seconds", "fence", "actor", "detail"],
                                   rows: events.map { e in
                                       let from = e["from_status"] as? String
                                       return [text(e["at"]), text(e["event"]),
                                               (from.map { "\($0) → " } ?? "") + text(e["to_status"]), text(e["stage"]),
                                               seconds(e["seconds"]) + (e["open"] as? Bool == true ? " (running)" : ""),
                                               text(e["fence"]), text(e["actor"]), e["detail"] is NSNull ? "" : text(e["detail"])]
                                   }).render())
        }
        if let spans = trace["time_in_stage"] as? [[String: Any]], !spans.isEmpty {
            lines.append("")
            lines.append("time in stage:")
            lines.append(TextTable(columns: ["status", "stage", "seconds"],
                                   rows: spans.map { s in
                                       [text(s["status"]), text(s["stage"]),
                                        seconds(s["seconds"]) + (s["open"] as? Bool == true ? " (still there)" : "")]
                                   }).render())
        }
        return lines.joined(separator: "\n")
    }
}
