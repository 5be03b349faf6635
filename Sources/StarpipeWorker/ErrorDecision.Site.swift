import StarpipeCore

extension ErrorDecision {
    /// What the worker was doing when the error arose: the second input of the table.
    enum Site: Equatable, Sendable, CaseIterable {
        /// One call across a network boundary (connect, bucket, Redis, a query), under ``RetryPolicy``.
        case call
        /// Waiting for work: LISTEN, the next claimable time, notifications.
        case idle
        /// Registering one manifest found in the bucket.
        case registration
        /// Working on a claimed job at this stage, after the failed call's own retries.
        case stage(JobStage)
        /// A call that lets go of a job: fail, nack or release.
        case settlement
        /// The lease keeper renewing the job's lease.
        case heartbeat

        static let allCases: [Site] = [.call, .idle, .registration] + JobStage.allCases.map(Site.stage) + [.settlement, .heartbeat]
    }
}
