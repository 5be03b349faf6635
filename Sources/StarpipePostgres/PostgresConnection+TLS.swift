import CLibPQ

extension PostgresConnection {
    /// Whether the connection is encrypted with TLS.
    public var usesTLS: Bool { PQsslInUse(rawHandle) == 1 }

    /// Whether the server is on this machine: a Unix socket, `localhost` or a loopback address, where a connection
    /// without TLS exposes nothing to the network.
    public var isLoopback: Bool {
        guard let pointer = PQhost(rawHandle) else { return true }
        let host = String(cString: pointer)
        return host.hasPrefix("/") || host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
