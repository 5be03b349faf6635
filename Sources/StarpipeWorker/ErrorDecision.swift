import StarpipeCore

/// What the worker does after an error: the one table, as a pure function.
///
/// Every place that catches an error (a call under ``RetryPolicy``, the idle wait, registering a
/// manifest, a job's stage, settling a job, the lease keeper's heartbeat) classifies it as a
/// ``Failure`` and asks ``outcome(for:at:attempt:shutdown:)`` what to do; none decides on its own.
/// Modelled on postgres-nio's `ConnectionStateMachine`: explicit inputs, explicit outputs, and
/// unit tests that enumerate the table.
enum ErrorDecision {
    /// The outcome of `failure` met at `site`, on `attempt` of the call that failed, while the
    /// worker is in `shutdown`.
    static func outcome(for failure: Failure, at site: Site, attempt: Attempt, shutdown: Shutdown) -> Outcome {
        switch site {
        case .call:
            // Transient failures heal: try again after backoff while attempts are left.
            return failure == .transient && !attempt.isLast ? .retry : .giveUp
        case .idle:
            // The database went away while we waited; reconnect on the next round.
            return failure == .transient ? .retry : .giveUp
        case .registration:
            // One bad manifest must not stop the others; a database that is gone stops the scan.
            return failure == .transient ? .giveUp : .fail
        case .stage:
            switch failure {
            case .fencedOut:
                return .fencedOut
            case .cancelled:
                // Only the deadline watcher cancels; any other cancel is an ordinary failure.
                return shutdown == .pastDeadline ? .release : .fail
            case .stopDeadline:
                return .release
            case .transient:
                // The call's own retries are spent: count the attempt, back off, dead-letter at the last.
                return .nack
            case .rejected, .refused, .permanent:
                return .fail
            }
        case .settlement:
            switch failure {
            case .fencedOut:
                // Taken over meanwhile: there is nothing to let go.
                return .fencedOut
            case .cancelled where shutdown == .pastDeadline && !attempt.isLast:
                // A cancel sent at the deadline while a statement was ending landed on this call.
                return .retry
            default:
                return .giveUp
            }
        case .heartbeat:
            // Anything but a stale token is retried, on a fresh connection, at the next renewal.
            return failure == .fencedOut ? .fencedOut : .retry
        }
    }
}
