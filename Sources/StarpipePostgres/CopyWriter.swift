import CLibPQ

/// Sends COPY data to the server during ``PostgresConnection/copyIn(_:_:)``.
public struct CopyWriter {
    private let handle: OpaquePointer

    init(handle: OpaquePointer) {
        self.handle = handle
    }

    /// Sends bytes of COPY data; they need not end on a row boundary.
    public func send(_ bytes: UnsafeRawBufferPointer) throws(PostgresError) {
        guard bytes.count > 0, let base = bytes.baseAddress else { return }
        let status = PQputCopyData(handle, base.assumingMemoryBound(to: CChar.self), Int32(bytes.count))
        guard status == 1 else {
            let message = PQerrorMessage(handle).map { String(cString: $0) } ?? "COPY send failed"
            // Sending only fails when the connection does.
            throw PostgresError(code: .connection, serverMessage: message)
        }
    }

    /// Sends the contents of a byte array.
    public func send(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try send($0) }
    }
}
