extension ErrorDecision {
    /// Where the worker is in stopping: the fourth input of the table.
    enum Shutdown: Equatable, Sendable, CaseIterable {
        /// No stop was requested.
        case running
        /// A stop was requested: no new job is claimed, the current one may finish.
        case stopping
        /// The stop deadline has passed: the current job is abandoned and released.
        case pastDeadline

        /// The state `stop` is in now.
        init(_ stop: StopSignal) {
            if stop.mustAbort {
                self = .pastDeadline
            } else {
                self = stop.isStopping ? .stopping : .running
            }
        }
    }
}
