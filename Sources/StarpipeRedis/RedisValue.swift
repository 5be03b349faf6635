/// A Redis reply.
public enum RedisValue: Equatable, Sendable {
    case string(String)
    case status(String)
    case integer(Int)
    case array([RedisValue])
    case null
}
