import CLibPQ
import Foundation

extension PostgresConnection {
    /// Subscribes this connection to a NOTIFY channel.
    public func listen(_ channel: String) throws(PostgresError) {
        try execute("LISTEN " + Self.quoteIdentifier(channel))
    }

    /// Waits up to `timeout` seconds for a notification on a channel this connection listens to.
    /// Returns the payloads that arrived (empty on timeout). Never busy-waits: it sleeps in poll(2).
    public func waitForNotifications(timeout: Double) throws(PostgresError) -> [String] {
        var payloads = drainNotifications()
        if !payloads.isEmpty { return payloads }
        var descriptor = pollfd(fd: PQsocket(rawHandle), events: Int16(POLLIN), revents: 0)
        let ready = poll(&descriptor, 1, Int32(max(0, timeout) * 1000))
        if ready < 0, errno != EINTR {
            throw PostgresError(code: .connection, serverMessage: "poll failed on the database socket")
        }
        if ready > 0 {
            guard PQconsumeInput(rawHandle) == 1 else {
                throw PostgresError(code: .connection, serverMessage: String(cString: PQerrorMessage(rawHandle)))
            }
            payloads = drainNotifications()
        }
        return payloads
    }

    private func drainNotifications() -> [String] {
        var payloads: [String] = []
        while let notification = PQnotifies(rawHandle) {
            payloads.append(String(cString: notification.pointee.extra))
            PQfreemem(notification)
        }
        return payloads
    }
}
