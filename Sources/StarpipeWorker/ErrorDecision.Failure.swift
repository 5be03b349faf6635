import StarpipeCore
import StarpipePostgres
import StarpipeRedis

extension ErrorDecision {
    /// An error as the worker tells errors apart: the first input of the table.
    enum Failure: Equatable, Sendable, CaseIterable {
        /// Another worker holds the job now: SQLSTATE SP002, or the lease keeper saw it (``FencedOut``).
        case fencedOut
        /// A statement was cancelled (57014 query_canceled).
        case cancelled
        /// The stop deadline passed while the job ran (``StopDeadlineExceeded``).
        case stopDeadline
        /// May heal by itself: connection loss, timeouts, resource shortage, shutdowns,
        /// serialization failures and deadlocks (``PostgresError/isTransient``), a Redis
        /// connection failure, a bucket operation that may pass when tried again (code `bucket`).
        case transient
        /// starpipe's own check refused the input: the file or manifest does not match, bad data
        /// (a ``StarpipeError`` other than a transient bucket failure; a bucket call the store refused for good,
        /// `bucket_refused`, is one too: 403, NoSuchKey).
        case rejected
        /// The extension refused: one of its SQLSTATEs (class SP) other than SP002.
        case refused
        /// Anything else: bad SQL or objects (class 42), data errors outside COPY, unknown errors.
        case permanent

        /// Classifies an error from any boundary.
        init(_ error: any Error) {
            switch error {
            case is FencedOut:
                self = .fencedOut
            case is StopDeadlineExceeded:
                self = .stopDeadline
            case let error as PostgresError:
                if error.state == .staleFence {
                    self = .fencedOut
                } else if error.state == .queryCanceled {
                    self = .cancelled
                } else if error.isTransient {
                    self = .transient
                } else if error.isStarpipeError {
                    self = .refused
                } else {
                    self = .permanent
                }
            case let error as RedisError:
                self = error.isTransient ? .transient : .permanent
            case let error as StarpipeError:
                self = error.code == .bucket ? .transient : .rejected
            default:
                self = .permanent
            }
        }
    }
}
