import CLibPQ

/// Cancels the statement a ``PostgresConnection`` is running, from any thread (libpq's PQcancel).
public final class PostgresCanceller: @unchecked Sendable {
    private let handle: OpaquePointer

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    deinit {
        PQfreeCancel(handle)
    }

    /// Asks the server to cancel the running statement; true when the request was delivered.
    /// The statement then fails with SQLSTATE 57014 and its transaction rolls back.
    @discardableResult
    public func cancel() -> Bool {
        var message = [CChar](repeating: 0, count: 256)
        return PQcancel(handle, &message, Int32(message.count)) == 1
    }
}

extension PostgresConnection {
    /// A canceller for this connection; make it on the connection's own thread, use it from any.
    public func makeCanceller() -> PostgresCanceller? {
        PQgetCancel(rawHandle).map(PostgresCanceller.init(handle:))
    }
}
