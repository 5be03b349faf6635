/// An error talking to Redis.
public struct RedisError: Error, CustomStringConvertible, Sendable {
    /// A stable category of the failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// Could not connect, or the connection broke (transient).
        public static let connection = Code("connection")
        /// The server answered with an error reply.
        public static let server = Code("server")
        /// The URL or a reply was not what starpipe expects.
        public static let protocolViolation = Code("protocol")
        public var description: String { name }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// Connection failures may heal; server errors and protocol violations will not.
    public var isTransient: Bool { code == .connection }

    public var description: String { "redis \(code): \(message)" }
}
