import Logging
import StarpipeCore
import StarpipePostgres
import StarpipeWorker
import Testing

@Suite("Retry policy")
struct RetryPolicyTests {
    static let logger = Logger(label: "test")

    @Test("the backoff ceiling doubles from the base up to the cap")
    func ceiling() {
        let policy = RetryPolicy(baseSeconds: 0.2, capSeconds: 5, attempts: 8)
        #expect([1, 2, 3, 4, 5, 6, 7].map(policy.ceiling(after:)) == [0.2, 0.4, 0.8, 1.6, 3.2, 5, 5])
        #expect(RetryPolicy(attempts: 0).attempts == 1)
    }

    @Test("transient failures are retried until the attempts run out")
    func transient() {
        let policy = RetryPolicy(baseSeconds: 0.001, capSeconds: 0.001, attempts: 3)
        var calls = 0
        var reconnects = 0
        #expect(throws: PostgresError.self) {
            try policy.run("test", logger: Self.logger, before: { _ in reconnects += 1 }) {
                calls += 1
                throw PostgresError(code: .connection, serverMessage: "gone")
            }
        }
        #expect(calls == 3)
        #expect(reconnects == 2)
    }

    @Test("a permanent failure is thrown at once; a later success is returned")
    func permanentAndSuccess() throws {
        let policy = RetryPolicy(baseSeconds: 0.001, capSeconds: 0.001, attempts: 4)
        var calls = 0
        #expect(throws: StarpipeError.self) {
            try policy.run("test", logger: Self.logger) {
                calls += 1
                throw StarpipeError(.integrity, "mismatch")
            }
        }
        #expect(calls == 1)
        calls = 0
        let value = try policy.run("test", logger: Self.logger) { () throws -> Int in
            calls += 1
            if calls < 3 { throw StarpipeError(.bucket, "not yet") }
            return 42
        }
        #expect(value == 42 && calls == 3)
    }
}
