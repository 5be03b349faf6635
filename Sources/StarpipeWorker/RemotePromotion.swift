import Foundation
import Logging
import StarpipeCore
import StarpipePostgres

/// A job's promotion into a production database that is not the pipeline database.
///
/// The extension decides everything (``plan`` comes from `starpipe.remote_plan`); this runs its statements. In one
/// production transaction: the staged rows are copied into a temporary table, the mass-delete guard, deletes,
/// audit and MERGE run against it, and a row of production's ledger (`starpipe_ledger.applied`) records the job.
/// Then the pipeline records the promotion with the audit rows read back from production. A job production's
/// ledger already has (a worker died between the two commits) is not applied again: only the record step runs.
public struct RemotePromotion {
    /// Where a test may stop the process at once (`STARPIPE_FAILPOINT`), to prove recovery from a crash.
    public enum Failpoint: String, Sendable {
        /// Right after the production transaction commits, before the pipeline records it.
        case afterProductionCommit = "after_production_commit"
    }

    let plan: [String: Any]
    let pipeline: PostgresConnection
    let productionURL: String
    let logger: Logger
    let failpoint: Failpoint?

    public init(plan: [String: Any], pipeline: PostgresConnection, productionURL: String, logger: Logger,
                failpoint: Failpoint? = ProcessInfo.processInfo.environment["STARPIPE_FAILPOINT"].flatMap(Failpoint.init(rawValue:))) {
        self.plan = plan
        self.pipeline = pipeline
        self.productionURL = productionURL
        self.logger = logger
        self.failpoint = failpoint
    }

    /// The plan of `job` from the extension (nil when its mapping promotes into the pipeline database).
    /// `fence` nil: a human's promotion of a job awaiting it.
    public static func plan(job: Int64, fence: Int64?, allowMassDelete: Bool = false,
                            on pipeline: PostgresConnection) throws -> [String: Any]? {
        let text = try pipeline.query("SELECT starpipe.remote_plan($1, $2, $3)",
                                      [String(job), fence.map(String.init), allowMassDelete ? "true" : "false"]).scalar
        guard let text else { return nil }
        guard let plan = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
            throw StarpipeError(.configuration, "starpipe.remote_plan returned no plan for job \(job)")
        }
        return plan
    }

    /// Runs the plan; returns the job's status after (SUCCESS, or BLOCKED by the mass-delete guard).
    public func run() throws -> String {
        let job = try string("job")
        let fence = plan["fence"].flatMap { $0 is NSNull ? nil : "\($0)" }
        let pipelineID = try string("pipeline")
        let production = try PostgresConnection(url: productionURL, applicationName: "starpipe-promote",
                                                settings: PostgresConnection.pipelineSettings)
        var applied: [String: Any]
        try production.execute("BEGIN")
        do {
            try production.query(try string("lock"))
            if let row = try production.query(try string("ledger_check"), [pipelineID, job]).rows.first {
                // Applied by an earlier attempt whose record did not land: record it, apply nothing.
                try production.execute("ROLLBACK")
                logger.notice("production already holds this job; recording it", metadata: ["starpipe.job_id": "\(job)"])
                applied = ["written": Int(row[0] ?? "0") ?? 0, "deleted": Int(row[1] ?? "0") ?? 0,
                           "guard": try row[2].map { try JSONSerialization.jsonObject(with: Data($0.utf8)) } ?? NSNull(),
                           "staged_digest": row[3] ?? ""]
            } else {
                switch try apply(job: job, pipelineID: pipelineID, on: production) {
                case .blocked(let figures):
                    try production.execute("ROLLBACK")
                    return try pipeline.query("SELECT starpipe.remote_blocked($1, $2, $3)", [job, fence, figures]).scalar ?? ""
                case .applied(let row):
                    applied = row
                }
                try production.execute("COMMIT")
                if failpoint == .afterProductionCommit {
                    logger.critical("failpoint after_production_commit: killing this process")
                    kill(getpid(), SIGKILL)
                }
            }
        } catch {
            if production.isInTransaction { try? production.execute("ROLLBACK") }
            throw error
        }
        return try record(job: job, fence: fence, applied: applied, from: production)
    }

    /// What the production transaction did.
    private enum Outcome {
        /// Applied: production's ledger row ({written, deleted, guard, staged_digest}).
        case applied([String: Any])
        /// The mass-delete guard stopped it (its figures, JSON); nothing was applied.
        case blocked(String)
    }

    /// Applies the plan inside the open production transaction.
    private func apply(job: String, pipelineID: String, on production: PostgresConnection) throws -> Outcome {
        try production.execute(try string("create_stage"))
        let copied = try production.copyIn(try string("copy_in")) { writer in
            try pipeline.copyOut(try string("copy_out")) { chunk in try writer.send(chunk) }
        }
        try production.execute(try string("analyze_stage"))
        var guardFigures: Any = NSNull()
        var deleted = 0
        if let guardSQL = plan["guard"] as? String {
            let text = try production.query(guardSQL).scalar ?? "{}"
            let figures = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
            guardFigures = figures
            // The plan's query decides (and remote_blocked decides again from the figures).
            if figures["exceeded"] as? Bool == true {
                return .blocked(text)
            }
            let missing = (figures["missing"] as? NSNumber)?.int64Value ?? 0
            if missing > 0, let deleteSQL = plan["delete"] as? String {
                deleted = try production.query(deleteSQL, [pipelineID, job]).affectedRows
            }
        }
        try production.query(try string("audit"), [pipelineID, job])
        var written = 0
        if try production.query(try string("write_needed"), [pipelineID, job]).scalar == "t" {
            written = try production.query(try string("merge")).affectedRows
        }
        let guardJSON = guardFigures is NSNull ? nil
            : String(decoding: try JSONSerialization.data(withJSONObject: guardFigures, options: [.sortedKeys]), as: UTF8.self)
        try production.query(try string("ledger_insert"), [
            pipelineID, job, try string("client"), try string("table"), try string("target"), try string("staged_digest"),
            String(written), String(deleted), guardJSON,
        ])
        logger.info("applied in production", metadata: [
            "starpipe.job_id": "\(job)", "starpipe.rows": "\(copied)", "starpipe.written": "\(written)", "starpipe.deleted": "\(deleted)",
        ])
        return .applied(["written": written, "deleted": deleted, "guard": guardFigures, "staged_digest": try string("staged_digest")])
    }

    /// Records the applied promotion in the pipeline database, with its audit rows read back from production.
    private func record(job: String, fence: String?, applied: [String: Any], from production: PostgresConnection) throws -> String {
        let appliedJSON = String(decoding: try JSONSerialization.data(withJSONObject: applied, options: [.sortedKeys]), as: UTF8.self)
        try pipeline.execute("BEGIN")
        do {
            try pipeline.execute(try string("remote_audit"))
            _ = try pipeline.copyIn(try string("audit_in")) { writer in
                try production.copyOut(try string("audit_out")) { chunk in try writer.send(chunk) }
            }
            let status = try pipeline.query("SELECT starpipe.record_remote_promotion($1, $2, $3)", [job, fence, appliedJSON]).scalar ?? ""
            try pipeline.execute("COMMIT")
            return status
        } catch {
            if pipeline.isInTransaction { try? pipeline.execute("ROLLBACK") }
            throw error
        }
    }

    private func string(_ key: String) throws -> String {
        let value = plan[key]
        if let text = value as? String { return text }
        if let number = value as? NSNumber { return number.stringValue }
        throw StarpipeError(.configuration, "the promotion plan has no \(key)")
    }
}
