/// The SQLSTATEs starpipe tells apart: the extension's own (class SP) and the Postgres ones the
/// worker reacts to. Any other code is kept as text in ``PostgresError/sqlState``.
public enum SQLState: String, Sendable, CaseIterable, CustomStringConvertible {
    /// SP001: a job status change that `starpipe._transition` does not allow.
    case illegalTransition = "SP001"
    /// SP002: a stale fencing token, or the job is no longer held by this worker.
    case staleFence = "SP002"
    /// SP003: a data file that does not match its manifest.
    case fileMismatch = "SP003"
    /// SP004: schema drift that a mapping depends on.
    case schemaDrift = "SP004"
    /// SP005: an invalid manifest.
    case invalidManifest = "SP005"
    /// SP006: an invalid mapping config.
    case invalidMapping = "SP006"
    /// 57014 query_canceled: a statement stopped by a cancel request (the worker's stop deadline).
    case queryCanceled = "57014"
    /// 57P01 admin_shutdown.
    case adminShutdown = "57P01"
    /// 57P02 crash_shutdown.
    case crashShutdown = "57P02"
    /// 57P03 cannot_connect_now.
    case cannotConnectNow = "57P03"
    /// 40001 serialization_failure.
    case serializationFailure = "40001"
    /// 40P01 deadlock_detected.
    case deadlockDetected = "40P01"
    /// 55P03 lock_not_available.
    case lockNotAvailable = "55P03"

    /// The five characters, e.g. `SP002`.
    public var description: String { rawValue }
}
