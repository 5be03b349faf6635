import StarpipeCore
@testable import StarpipeWorker
import Testing

/// The error table, enumerated: every failure at every site, on a first and a last attempt, in
/// every shutdown state. Each site's expected rows are written out; nothing else may change them.
@Suite("Error decision table")
struct ErrorDecisionTests {
    typealias Failure = ErrorDecision.Failure
    typealias Outcome = ErrorDecision.Outcome
    typealias Shutdown = ErrorDecision.Shutdown
    typealias Attempt = ErrorDecision.Attempt

    static let attempts = [Attempt(1, of: 4), Attempt(3, of: 4), Attempt(4, of: 4), Attempt.spent]

    static func outcome(_ failure: Failure, _ site: ErrorDecision.Site, _ attempt: Attempt, _ shutdown: Shutdown) -> Outcome {
        ErrorDecision.outcome(for: failure, at: site, attempt: attempt, shutdown: shutdown)
    }

    /// Calls `body` with every failure, shutdown state and attempt.
    static func forEachInput(_ body: (Failure, Shutdown, Attempt) -> Void) {
        for failure in Failure.allCases {
            for shutdown in Shutdown.allCases {
                for attempt in attempts {
                    body(failure, shutdown, attempt)
                }
            }
        }
    }

    @Test("a call under RetryPolicy retries transient failures while attempts are left, and gives up otherwise")
    func call() {
        Self.forEachInput { failure, shutdown, attempt in
            let expected: Outcome = failure == .transient && !attempt.isLast ? .retry : .giveUp
            #expect(Self.outcome(failure, .call, attempt, shutdown) == expected, "\(failure) \(attempt) \(shutdown)")
        }
    }

    @Test("the idle wait reconnects after a transient failure and gives up on anything else")
    func idle() {
        Self.forEachInput { failure, shutdown, attempt in
            #expect(Self.outcome(failure, .idle, attempt, shutdown) == (failure == .transient ? .retry : .giveUp), "\(failure)")
        }
    }

    @Test("registration skips a manifest the database refuses and stops the scan when the database is gone")
    func registration() {
        Self.forEachInput { failure, shutdown, attempt in
            #expect(Self.outcome(failure, .registration, attempt, shutdown) == (failure == .transient ? .giveUp : .fail), "\(failure)")
        }
    }

    /// A job's stage: (running, stopping, past the deadline) per failure.
    static let stageRows: [Failure: [Shutdown: Outcome]] = [
        .fencedOut: [.running: .fencedOut, .stopping: .fencedOut, .pastDeadline: .fencedOut],
        .cancelled: [.running: .fail, .stopping: .fail, .pastDeadline: .release],
        .stopDeadline: [.running: .release, .stopping: .release, .pastDeadline: .release],
        .transient: [.running: .nack, .stopping: .nack, .pastDeadline: .nack],
        .rejected: [.running: .fail, .stopping: .fail, .pastDeadline: .fail],
        .refused: [.running: .fail, .stopping: .fail, .pastDeadline: .fail],
        .permanent: [.running: .fail, .stopping: .fail, .pastDeadline: .fail],
    ]

    @Test("a job's stage: fenced out, release at the deadline, nack when transient, fail otherwise", arguments: JobStage.allCases)
    func stage(_ stage: JobStage) {
        #expect(Set(Self.stageRows.keys) == Set(Failure.allCases))
        Self.forEachInput { failure, shutdown, attempt in
            let expected = Self.stageRows[failure]?[shutdown]
            #expect(expected != nil)
            #expect(Self.outcome(failure, .stage(stage), attempt, shutdown) == expected, "\(failure) \(shutdown)")
        }
    }

    @Test("settling: nothing to let go when fenced out; a late cancel past the deadline is sent again, twice at most")
    func settlement() {
        for failure in Failure.allCases {
            for shutdown in Shutdown.allCases {
                for number in 1...4 {
                    let attempt = Attempt(number, of: 3)
                    let expected: Outcome
                    switch failure {
                    case .fencedOut: expected = .fencedOut
                    case .cancelled where shutdown == .pastDeadline && number < 3: expected = .retry
                    default: expected = .giveUp
                    }
                    #expect(Self.outcome(failure, .settlement, attempt, shutdown) == expected, "\(failure) \(number) \(shutdown)")
                }
            }
        }
    }

    @Test("a heartbeat stops when fenced out and is retried at the next renewal otherwise")
    func heartbeat() {
        for failure in Failure.allCases {
            for shutdown in Shutdown.allCases {
                #expect(Self.outcome(failure, .heartbeat, .spent, shutdown) == (failure == .fencedOut ? .fencedOut : .retry))
            }
        }
    }

    @Test("only calls, the idle wait, settling and heartbeats retry; only a job's stage nacks or releases")
    func outcomesBySite() {
        for site in ErrorDecision.Site.allCases {
            Self.forEachInput { failure, shutdown, attempt in
                let outcome = Self.outcome(failure, site, attempt, shutdown)
                if case .stage = site {
                    #expect(outcome != .retry && outcome != .giveUp)
                } else {
                    #expect(outcome != .nack && outcome != .release)
                }
            }
        }
        #expect(ErrorDecision.Site.allCases.count == 5 + JobStage.allCases.count)
    }
}
