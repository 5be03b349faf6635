import Foundation
import Logging
import StarpipeCore
import StarpipePostgres

/// Settlement: after a job's work ended with an error, let go of the job as ``ErrorDecision`` says.
extension WorkerSlot {
    /// Settles `job` after `error` ended its work: nothing when fenced out, release at the stop
    /// deadline, nack when transient failures are exhausted, fail otherwise.
    func settle(_ job: ClaimedJob, after error: any Error, logger: Logger) throws {
        let failure = ErrorDecision.Failure(error)
        switch ErrorDecision.outcome(for: failure, at: .stage(job.stage), attempt: .spent, shutdown: .init(worker.stop)) {
        case .fencedOut:
            logger.warning("fenced out: another worker holds this job now")
        case .release:
            if failure == .cancelled {
                logger.warning("statement cancelled at the stop deadline; releasing the job", metadata: ["starpipe.error": "\(error)"])
            } else {
                logger.warning("stop deadline reached; releasing the job")
            }
            try release(job)
        case .nack:
            logger.error("transient failures exhausted; job goes back to the queue", metadata: ["starpipe.error": "\(error)"])
            let status = try letGo(job, "SELECT starpipe.nack($1, $2, $3)", job.fenced + ["\(error)"])
            if status == JobStatus.dead.rawValue {
                logger.error("job moved to the dead-letter queue after its last attempt")
            }
        case .fail, .retry, .giveUp:
            // (A job's stage never answers retry or give up.)
            logger.error("job failed", metadata: ["starpipe.error": "\(error)", "starpipe.claimed_stage": "\(job.stage.rawValue)"])
            try fail(job, reason: "\(error)")
        }
    }

    func fail(_ job: ClaimedJob, reason: String) throws {
        try letGo(job, "SELECT starpipe.fail($1, $2, $3)", job.fenced + [reason])
    }

    /// Gives the job back at once, without counting the claim as an attempt.
    func release(_ job: ClaimedJob) throws {
        try letGo(job, "SELECT starpipe.release($1, $2)", job.fenced)
    }

    /// Runs a call that lets go of a job; if the job was taken over meanwhile, there is nothing to let go.
    ///
    /// At the stop deadline the deadline watcher may have cancelled statements (PQcancel). A cancel
    /// request is asynchronous: one sent while a statement was ending can still land on the next,
    /// such as a ROLLBACK or this call. So a transaction left open is rolled back first, and a call
    /// refused with 57014 after the deadline is sent again (the watcher has stopped, none follows).
    @discardableResult
    private func letGo(_ job: ClaimedJob, _ sql: String, _ parameters: [String?]) throws -> String? {
        var attempt = 1
        while true {
            do {
                if let connection, connection.isHealthy, connection.isInTransaction {
                    try connection.execute("ROLLBACK")
                }
                return try query(sql, parameters).scalar
            } catch {
                switch ErrorDecision.outcome(for: .init(error), at: .settlement, attempt: .init(attempt, of: 3),
                                             shutdown: .init(worker.stop)) {
                case .fencedOut:
                    logger.warning("fenced out: another worker holds this job now", metadata: ["starpipe.job_id": "\(job.id)"])
                    return nil
                case .retry:
                    logger.info("a cancel request sent at the stop deadline landed late; sending again",
                                metadata: ["starpipe.job_id": "\(job.id)"])
                    attempt += 1
                default:
                    throw error
                }
            }
        }
    }
}
