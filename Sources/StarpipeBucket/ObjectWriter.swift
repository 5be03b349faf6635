/// Receives the bytes of an object being written with ``Bucket/put(_:_:)``.
public struct ObjectWriter {
    private let sink: (UnsafeRawBufferPointer) throws -> Void

    init(sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.sink = sink
    }

    /// Appends bytes to the object.
    public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
        try sink(bytes)
    }

    /// Appends an array of bytes to the object.
    public mutating func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try sink($0) }
    }
}
