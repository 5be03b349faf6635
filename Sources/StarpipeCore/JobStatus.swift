/// Where a job stands in the ledger (`starpipe.job.status`); the legal edges between them are
/// in the extension's `starpipe._transition`.
public enum JobStatus: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Registered or given back, waiting to be claimed.
    case pending = "PENDING"
    /// Claimed by a worker, which holds its lease and fencing token.
    case processing = "PROCESSING"
    /// Promoted (or kept in raw only, when the table has no mapping).
    case success = "SUCCESS"
    /// Failed for a reason that retrying will not heal; `starpipe.retry(job)` requeues it.
    case failed = "FAILED"
    /// Its content is already live: nothing to do.
    case duplicate = "DUPLICATE"
    /// Stopped by drift or a validation gate until a human decides.
    case blocked = "BLOCKED"
    /// Dead-lettered after `max_attempts` transient failures.
    case dead = "DEAD"

    /// The ledger's spelling, e.g. `PENDING`.
    public var description: String { rawValue }
}
