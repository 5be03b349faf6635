import Foundation
import StarpipeRedis
import Testing

/// The per-client lock against a real redis-server.
@Suite("Redis lock")
struct RedisLockTests {
    @Test("only one holder at a time; renew and release need the holder's token")
    func exclusive() throws {
        let server = try TestRedis()
        let connection = try RedisConnection(url: server.url)
        let first = RedisLock(key: RedisLock.clientKey("acme"), token: "w1#1", ttlMilliseconds: 10_000)
        let second = RedisLock(key: RedisLock.clientKey("acme"), token: "w2#2", ttlMilliseconds: 10_000)
        #expect(try first.acquire(on: connection))
        #expect(try !second.acquire(on: connection))
        #expect(try !second.renew(on: connection))
        #expect(try !second.release(on: connection))
        #expect(try first.renew(on: connection))
        #expect(try first.release(on: connection))
        #expect(try second.acquire(on: connection))
    }

    @Test("an expired lock can be taken by another holder, and the old holder cannot renew it")
    func expiry() throws {
        let server = try TestRedis()
        let connection = try RedisConnection(url: server.url)
        let first = RedisLock(key: "starpipe:test", token: "a", ttlMilliseconds: 100)
        let second = RedisLock(key: "starpipe:test", token: "b", ttlMilliseconds: 10_000)
        #expect(try first.acquire(on: connection))
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try second.acquire(on: connection))
        #expect(try !first.renew(on: connection))
    }

    @Test("a restarted, empty Redis is a connection error once, then the lock can be taken again")
    func restart() throws {
        let server = try TestRedis()
        let connection = try RedisConnection(url: server.url, timeout: 1)
        let lock = RedisLock(key: "starpipe:test", token: "a", ttlMilliseconds: 10_000)
        #expect(try lock.acquire(on: connection))
        server.stop()
        #expect(throws: RedisError.self) { try lock.renew(on: connection) }
        try server.start()
        #expect(try !lock.renew(on: connection), "the key is gone after a restart")
        #expect(try lock.acquire(on: connection))
    }

    @Test("a refused connection is a transient error")
    func refused() throws {
        let connection = try RedisConnection(url: "redis://127.0.0.1:1", timeout: 0.5)
        do {
            try connection.command(["PING"])
            Issue.record("PING to a closed port succeeded")
        } catch {
            #expect(error.isTransient)
        }
    }
}
