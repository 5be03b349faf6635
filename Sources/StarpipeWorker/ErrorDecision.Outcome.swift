extension ErrorDecision {
    /// What to do: the output of the table.
    enum Outcome: Equatable, Sendable, CaseIterable {
        /// Make the same call again, at the caller's pace: after backoff under ``RetryPolicy``, at
        /// once when settling, on the next round when idle, at the next renewal for a heartbeat.
        case retry
        /// Stop trying: the error goes to the caller, which decides at its own site.
        case giveUp
        /// Another worker holds the job: settle nothing, move on.
        case fencedOut
        /// Give the job back at once without counting an attempt (`starpipe.release`).
        case release
        /// Count the attempt and requeue with backoff; the last attempt dead-letters (`starpipe.nack`).
        case nack
        /// Fail the job (or reject the manifest) at once, with the reason (`starpipe.fail`).
        case fail
    }
}
