import Foundation
import StarpipeBucket
import StarpipeCore
import Testing

/// ``S3Bucket`` against a private moto_server: single and multipart uploads, streaming reads, listing past one
/// page, aborts, and how failures are reported.
@Suite("S3 bucket")
struct S3BucketTests {
    /// `count` bytes that are not all the same, so a misplaced part changes the content.
    private static func bytes(_ count: Int, seed: UInt8 = 7) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed) &+ $0 / 251) }
    }

    private static func put(_ bucket: S3Bucket, _ key: String, _ content: [UInt8], pieces: Int = 100) throws {
        try bucket.put(key) { writer in
            var start = 0
            while start < content.count {
                let end = min(start + pieces, content.count)
                try writer.write(Array(content[start..<end]))
                start = end
            }
        }
    }

    private static func streamed(_ bucket: S3Bucket, _ key: String, chunkSize: Int) throws -> (bytes: [UInt8], largest: Int) {
        var out: [UInt8] = []
        var largest = 0
        try bucket.stream(key, chunkSize: chunkSize) { chunk in
            out += chunk
            largest = max(largest, chunk.count)
        }
        return (out, largest)
    }

    @Test("an object below the part size goes in one PUT, a larger one as a multipart upload; both read back whole")
    func roundTrip() throws {
        let moto = try TestMoto()
        let bucket = try moto.makeBucket()
        let small = Self.bytes(1000)
        let large = Self.bytes(1024 * 5 + 17, seed: 3)
        try Self.put(bucket, "client=acme/small.json", small)
        try Self.put(bucket, "client=acme/large.json", large, pieces: 333)
        #expect(try bucket.read("client=acme/small.json") == Data(small))
        #expect(try bucket.size("client=acme/large.json") == Int64(large.count))
        let streamed = try Self.streamed(bucket, "client=acme/large.json", chunkSize: 500)
        #expect(streamed.bytes == large)
        #expect(streamed.largest <= 500)
        #expect(try bucket.list() == ["client=acme/large.json", "client=acme/small.json"])
        // The multipart ETag (md5 of the part md5s, "-N") proves the large object went in 6 parts.
        let head = try moto.request("HEAD", path: "/\(bucket.location.bucket)/client%3Dacme/large.json", service: "s3")
        #expect(head.status == 200)
        #expect(try bucket.incompleteUploads().isEmpty)
        // An empty object is a PUT too.
        try Self.put(bucket, "empty.json", [])
        #expect(try bucket.size("empty.json") == 0)
    }

    @Test("keys with + = & ü @ : and spaces are stored under exactly that key")
    func awkwardKeys() throws {
        let moto = try TestMoto()
        let bucket = try moto.makeBucket()
        let keys = ["client=acme/a+b=c&d/ü@x y:z.json", "plus+only.json", "space only.json", "100%.json"]
        for (index, key) in keys.enumerated() {
            try Self.put(bucket, key, Self.bytes(300 + index))
        }
        #expect(try bucket.list() == keys.sorted())
        for (index, key) in keys.enumerated() {
            #expect(try bucket.read(key) == Data(Self.bytes(300 + index)), "\(key)")
        }
        // "+" stayed a plus: a key with a space in its place does not exist.
        #expect(try bucket.size("plus only.json") == nil)
    }

    @Test("a prefix is prepended and stripped, and listing follows continuation tokens past 1,000 keys")
    func prefixAndPages() throws {
        let moto = try TestMoto()
        let root = try moto.makeBucket()
        let bucket = try moto.open(root.location.bucket, prefix: "acme/in", credentials: TestMoto.anyCredentials)
        let count = 1_050
        let errors = LockedErrors()
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            for index in stride(from: worker, to: count, by: 8) {
                do { try Self.put(bucket, "k/\(String(format: "%05d", index)).json", [UInt8(index & 0xFF)]) } catch { errors.add(error) }
            }
        }
        #expect(errors.all.isEmpty, "\(errors.all)")
        try Self.put(root, "outside.json", [1])
        let keys = try bucket.list()
        #expect(keys.count == count)
        #expect(keys == (0..<count).map { "k/\(String(format: "%05d", $0)).json" })
        #expect(try root.list().count == count + 1)
        #expect(try root.list().filter { $0.hasPrefix("acme/in/") }.count == count)
        #expect(try bucket.read("k/00300.json") == Data([UInt8(300 & 0xFF)]))
    }

    @Test("an upload whose writer fails is aborted: no object, no incomplete upload left behind")
    func abortOnFailure() throws {
        let moto = try TestMoto()
        let bucket = try moto.makeBucket()
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try bucket.put("client=acme/data.json") { writer in
                try writer.write(Self.bytes(4000))
                throw Interrupted()
            }
        }
        #expect(try bucket.size("client=acme/data.json") == nil)
        #expect(try bucket.list().isEmpty)
        #expect(try bucket.incompleteUploads().isEmpty)
    }

    @Test("a missing key fails for good, naming the key; an unreachable store is a transient failure")
    func failures() throws {
        let moto = try TestMoto()
        let bucket = try moto.makeBucket()
        #expect(try bucket.size("client=acme/missing.json") == nil)
        do {
            _ = try bucket.read("client=acme/missing.json")
            Issue.record("a missing object was read")
        } catch {
            #expect(error.code == .bucketRefused)
            #expect(error.message.contains("client=acme/missing.json"))
            #expect(error.message.contains("NoSuchKey"))
        }
        do {
            try bucket.stream("client=acme/missing.json", chunkSize: 100) { _ in }
            Issue.record("a missing object was streamed")
        } catch let error as StarpipeError {
            #expect(error.code == .bucketRefused)
            #expect(error.message.contains("client=acme/missing.json"))
        }
        moto.stop()
        let started = Date()
        do {
            _ = try bucket.list()
            Issue.record("a stopped server answered")
        } catch {
            #expect(error.code == .bucket)
            #expect(error.message.contains("connection"))
        }
        // Three tries of at most a second each (the client's connect timeout), plus short backoffs.
        #expect(Date().timeIntervalSince(started) < 10)
    }

    @Test("a GET that loses its connection mid-body resumes where it stopped (a ranged GET pinned to the ETag)")
    func resumeAfterConnectionLoss() throws {
        let moto = try TestMoto()
        let name = "sp-resume-\(UInt32.random(in: 0...UInt32.max))"
        let direct = try moto.makeBucket(name, extra: "&part_size=1048576") // one PUT (the last part_size counts)
        let content = Self.bytes(300_000)
        try Self.put(direct, "big.json", content, pieces: 10_000)
        let proxy = try FaultProxy(upstreamPort: moto.port, marker: "GET /\(name)/big.json", fault: .cut(after: 100_000))
        defer { proxy.stop() }
        let viaProxy = S3Bucket(
            location: try S3Location(url: "s3://\(name)/?region=us-east-1&endpoint=http://127.0.0.1:\(proxy.port)"),
            credentials: TestMoto.anyCredentials, retry: S3RetryPolicy(attempts: 3, baseSeconds: 0.05, capSeconds: 0.2),
            connectTimeoutSeconds: 1)
        let streamed = try Self.streamed(viaProxy, "big.json", chunkSize: 65_536)
        #expect(proxy.didStrike)
        #expect(streamed.bytes.count == content.count)
        #expect(streamed.bytes == content)
    }

    @Test("a 503 SlowDown is retried with backoff, for a single PUT, a multipart part and a list", arguments: [
        ("PUT /", "small.json", 500), ("partNumber=2", "large.json", 3000), ("list-type=2", nil, 0),
    ] as [(String, String?, Int)])
    func slowDownRetried(marker: String, key: String?, size: Int) throws {
        let moto = try TestMoto()
        let name = "sp-slow-\(UInt32.random(in: 0...UInt32.max))"
        _ = try moto.makeBucket(name)
        let proxy = try FaultProxy(upstreamPort: moto.port, marker: marker, fault: .fail(status: 503, code: "SlowDown"))
        defer { proxy.stop() }
        let viaProxy = S3Bucket(
            location: try S3Location(url: "s3://\(name)/?region=us-east-1&endpoint=http://127.0.0.1:\(proxy.port)&part_size=1024"),
            credentials: TestMoto.anyCredentials, retry: S3RetryPolicy(attempts: 3, baseSeconds: 0.05, capSeconds: 0.2),
            connectTimeoutSeconds: 1)
        if let key {
            try Self.put(viaProxy, key, Self.bytes(size))
            #expect(try viaProxy.read(key) == Data(Self.bytes(size)))
        } else {
            #expect(try viaProxy.list().isEmpty)
        }
        #expect(proxy.didStrike)
    }

    @Test("x-amz-checksum-sha256 is sent when asked for, on single and multipart uploads")
    func checksumOption() throws {
        let moto = try TestMoto()
        let bucket = try moto.makeBucket(extra: "&checksum=sha256")
        #expect(bucket.location.checksumSHA256)
        let large = Self.bytes(3000)
        try Self.put(bucket, "large.json", large)
        try Self.put(bucket, "small.json", Self.bytes(10))
        #expect(try Self.streamed(bucket, "large.json", chunkSize: 4096).bytes == large)
        #expect(try bucket.read("small.json") == Data(Self.bytes(10)))
    }
}

/// Errors gathered from concurrent work.
final class LockedErrors: @unchecked Sendable {
    private let lock = NSLock()
    private var errors: [any Error] = []
    func add(_ error: any Error) { lock.lock(); errors.append(error); lock.unlock() }
    var all: [any Error] { lock.lock(); defer { lock.unlock() }; return errors }
}
