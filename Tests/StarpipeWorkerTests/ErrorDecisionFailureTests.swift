import StarpipeCore
import StarpipePostgres
import StarpipeRedis
@testable import StarpipeWorker
import Testing

/// How errors from every boundary become the table's first input.
@Suite("Error classification")
struct ErrorDecisionFailureTests {
    typealias Failure = ErrorDecision.Failure

    static func postgres(_ state: String?, code: PostgresError.Code = .statement) -> PostgresError {
        PostgresError(code: code, sqlState: state, serverMessage: "message")
    }

    @Test("SQLSTATEs", arguments: [
        ("SP002", Failure.fencedOut), ("57014", .cancelled),
        ("SP001", .refused), ("SP003", .refused), ("SP004", .refused), ("SP005", .refused), ("SP006", .refused),
        ("08006", .transient), ("53300", .transient), ("57P01", .transient), ("57P02", .transient), ("57P03", .transient),
        ("40001", .transient), ("40P01", .transient), ("55P03", .transient),
        ("22P02", .permanent), ("23505", .permanent), ("42P01", .permanent), ("XX000", .permanent),
    ])
    func sqlStates(state: String, expected: Failure) {
        #expect(Failure(Self.postgres(state)) == expected)
    }

    @Test("a lost connection is transient, with or without a SQLSTATE")
    func connection() {
        #expect(Failure(Self.postgres(nil, code: .connection)) == .transient)
        #expect(Failure(Self.postgres("08001", code: .connection)) == .transient)
        #expect(Failure(Self.postgres(nil)) == .permanent)
    }

    @Test("the worker's own signals")
    func signals() {
        #expect(Failure(FencedOut()) == .fencedOut)
        #expect(Failure(StopDeadlineExceeded()) == .stopDeadline)
    }

    @Test("Redis: a connection failure is transient, a server reply is not")
    func redis() {
        #expect(Failure(RedisError(.connection, "refused")) == .transient)
        #expect(Failure(RedisError(.server, "ERR")) == .permanent)
        #expect(Failure(RedisError(.protocolViolation, "reply")) == .permanent)
    }

    @Test("starpipe's own errors: a bucket failure may heal; a refused bucket call or a file that does not match never will")
    func starpipe() {
        #expect(Failure(StarpipeError(.bucket, "read failed")) == .transient)
        for code in [StarpipeError.Code.bucketRefused, .integrity, .badData, .invalidManifest, .invalidKey, .invalidName, .configuration, .source] {
            #expect(Failure(StarpipeError(code, "x")) == .rejected, "\(code)")
        }
    }

    @Test("anything else is permanent")
    func other() {
        struct Unknown: Error {}
        #expect(Failure(Unknown()) == .permanent)
        #expect(Failure(UnreadableManifest(jobID: 1, fence: 1, reason: "bad")) == .permanent)
    }

    @Test("the stop signal's state")
    func shutdown() {
        let stop = StopSignal()
        #expect(ErrorDecision.Shutdown(stop) == .running)
        stop.request(deadline: .distantFuture)
        #expect(ErrorDecision.Shutdown(stop) == .stopping)
        stop.request(deadline: .distantPast)
        #expect(ErrorDecision.Shutdown(stop) == .pastDeadline)
    }
}
