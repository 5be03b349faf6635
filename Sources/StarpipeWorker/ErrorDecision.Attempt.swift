extension ErrorDecision {
    /// Which try of a call failed: the third input of the table.
    struct Attempt: Equatable, Sendable {
        /// The failed try, 1-based.
        var number: Int
        /// How many tries the caller allows in all.
        var limit: Int

        init(_ number: Int, of limit: Int) {
            self.number = number
            self.limit = limit
        }

        /// True when no try is left after this one.
        var isLast: Bool { number >= limit }

        /// A call whose own retries are spent: how a job's stage sees the call that ended it.
        static let spent = Attempt(1, of: 1)
    }
}
