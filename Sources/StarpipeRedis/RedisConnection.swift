import CHiredis
import Foundation

/// A synchronous Redis connection through libhiredis (0.14: RESP2, no TLS).
///
/// A hiredis context is not thread-safe: use one connection per thread. After a connection error
/// the context is dropped and the next command reconnects.
public final class RedisConnection {
    /// Host of the server.
    public let host: String
    /// Port of the server.
    public let port: Int
    /// Connect and command timeout in seconds. Defaults to 2.
    public let timeout: Double
    private var context: UnsafeMutablePointer<redisContext>?

    /// Parses `redis://host[:port]` (port defaults to 6379) and connects lazily.
    public init(url: String, timeout: Double = 2) throws(RedisError) {
        guard let parsed = URL(string: url), parsed.scheme == "redis", let host = parsed.host, !host.isEmpty else {
            throw RedisError(.protocolViolation, "Redis URL must look like redis://host:port")
        }
        self.host = host
        self.port = parsed.port ?? 6379
        self.timeout = timeout
    }

    deinit {
        if let context { redisFree(context) }
    }

    /// Sends one command (arguments are binary-safe) and returns its reply.
    @discardableResult
    public func command(_ arguments: [String]) throws(RedisError) -> RedisValue {
        let context = try connected()
        let byteArrays = arguments.map { Array($0.utf8) }
        let reply: UnsafeMutableRawPointer? = byteArrays.withPointers { pointers, lengths in
            redisCommandArgv(context, Int32(arguments.count), pointers, lengths)
        }
        guard let reply else {
            let message = Self.errorText(context)
            disconnect()
            throw RedisError(.connection, message)
        }
        defer { freeReplyObject(reply) }
        return try Self.value(reply.assumingMemoryBound(to: redisReply.self))
    }

    /// Closes the connection; the next command reconnects.
    public func disconnect() {
        if let context { redisFree(context) }
        context = nil
    }

    private func connected() throws(RedisError) -> UnsafeMutablePointer<redisContext> {
        if let context { return context }
        let seconds = Int(timeout)
        var interval = timeval(tv_sec: seconds, tv_usec: Int(((timeout - Double(seconds)) * 1_000_000).rounded()))
        guard let context = redisConnectWithTimeout(host, Int32(port), interval) else {
            throw RedisError(.connection, "cannot allocate a Redis context")
        }
        if context.pointee.err != 0 {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisError(.connection, "cannot connect to \(host):\(port): \(message)")
        }
        _ = redisSetTimeout(context, interval)
        _ = withUnsafeMutablePointer(to: &interval) { $0 }
        self.context = context
        return context
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func value(_ reply: UnsafeMutablePointer<redisReply>) throws(RedisError) -> RedisValue {
        let reply = reply.pointee
        func text() -> String {
            guard let pointer = reply.str else { return "" }
            return String(decoding: UnsafeRawBufferPointer(start: pointer, count: Int(reply.len)), as: UTF8.self)
        }
        switch reply.type {
        case REDIS_REPLY_STRING: return .string(text())
        case REDIS_REPLY_STATUS: return .status(text())
        case REDIS_REPLY_INTEGER: return .integer(Int(reply.integer))
        case REDIS_REPLY_NIL: return .null
        case REDIS_REPLY_ERROR: throw RedisError(.server, text())
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            for index in 0..<Int(reply.elements) {
                guard let element = reply.element[index] else { continue }
                elements.append(try value(element))
            }
            return .array(elements)
        default:
            throw RedisError(.protocolViolation, "unexpected reply type \(reply.type)")
        }
    }
}

extension Array where Element == [UInt8] {
    /// Calls `body` with C pointers to each byte array and their lengths, valid during the call.
    fileprivate func withPointers<R>(_ body: (UnsafeMutablePointer<UnsafePointer<CChar>?>, UnsafePointer<Int>) -> R) -> R {
        let buffers = map { bytes -> UnsafeMutablePointer<CChar> in
            let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: Swift.max(bytes.count, 1))
            bytes.withUnsafeBufferPointer { source in
                source.withMemoryRebound(to: CChar.self) { chars in
                    if let base = chars.baseAddress { buffer.initialize(from: base, count: chars.count) }
                }
            }
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        var pointers: [UnsafePointer<CChar>?] = buffers.map { UnsafePointer($0) }
        let lengths = map(\.count)
        return pointers.withUnsafeMutableBufferPointer { pointerBuffer in
            lengths.withUnsafeBufferPointer { lengthBuffer in
                body(pointerBuffer.baseAddress!, lengthBuffer.baseAddress!)
            }
        }
    }
}
