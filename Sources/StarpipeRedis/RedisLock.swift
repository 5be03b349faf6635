/// A per-key lock in Redis: `SET key token NX PX ttl` to take it, a compare-and-pexpire script to
/// renew it and a compare-and-delete script to release it, so only the holder's token can extend
/// or free it.
///
/// This is an efficiency layer: correctness lives in the database's fencing tokens. A lock lost to
/// expiry or to a Redis restart never lets a stale worker write, because the extension rejects its
/// token.
public struct RedisLock {
    /// The Redis key, e.g. `starpipe:lock:client:acme`.
    public let key: String
    /// What this holder stores in the key: unique per holder and claim.
    public let token: String
    /// Time to live in milliseconds; renew well before it runs out.
    public let ttlMilliseconds: Int

    private static let renewScript = """
        if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end
        """
    private static let releaseScript = """
        if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
        """

    public init(key: String, token: String, ttlMilliseconds: Int) {
        self.key = key
        self.token = token
        self.ttlMilliseconds = ttlMilliseconds
    }

    /// The lock key of a client.
    public static func clientKey(_ client: String) -> String { "starpipe:lock:client:\(client)" }

    /// Takes the lock if nobody holds it; returns whether this holder now has it.
    public func acquire(on connection: RedisConnection) throws(RedisError) -> Bool {
        let reply = try connection.command(["SET", key, token, "NX", "PX", String(ttlMilliseconds)])
        return reply == .status("OK")
    }

    /// Extends the lock if this holder still has it; returns false when it was lost.
    public func renew(on connection: RedisConnection) throws(RedisError) -> Bool {
        let reply = try connection.command(["EVAL", Self.renewScript, "1", key, token, String(ttlMilliseconds)])
        return reply == .integer(1)
    }

    /// Frees the lock if this holder still has it; returns whether it did.
    @discardableResult
    public func release(on connection: RedisConnection) throws(RedisError) -> Bool {
        let reply = try connection.command(["EVAL", Self.releaseScript, "1", key, token])
        return reply == .integer(1)
    }
}
