import Foundation
import StarpipeBucket
import StarpipeCore
import Testing

/// ``LocalBucket`` on a fresh temporary directory per test.
@Suite("Local bucket")
struct LocalBucketTests {
    let root: String
    let bucket: LocalBucket

    init() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-bucket-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        bucket = LocalBucket(root: root + "/")
    }

    func cleanUp() {
        try? FileManager.default.removeItem(atPath: root)
    }

    @Test("put writes atomically; read, size and list see the object")
    func roundTrip() throws {
        defer { cleanUp() }
        #expect(bucket.root == root)
        try bucket.put("client=acme/table=t/data.json") { writer in
            try writer.write(Array("[{\"a\":1}]".utf8))
        }
        #expect(try bucket.read("client=acme/table=t/data.json") == Data("[{\"a\":1}]".utf8))
        #expect(try bucket.size("client=acme/table=t/data.json") == 9)
        #expect(try bucket.size("client=acme/table=t/none.json") == nil)
        #expect(try bucket.list() == ["client=acme/table=t/data.json"])
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: root + "/client=acme/table=t")
        #expect(leftovers == ["data.json"])
    }

    @Test("list is sorted and skips directories and temporary files of writes in progress")
    func list() throws {
        defer { cleanUp() }
        for key in ["b/2.json", "a.json", "b/1.json"] {
            try bucket.put(key) { try $0.write(Array(key.utf8)) }
        }
        _ = FileManager.default.createFile(atPath: root + "/b/.starpipe-tmp-1-2", contents: Data())
        try FileManager.default.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
        #expect(try bucket.list() == ["a.json", "b/1.json", "b/2.json"])
    }

    @Test("stream delivers the object in chunks of at most the chunk size, in order")
    func stream() throws {
        defer { cleanUp() }
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0) }
        try bucket.put("big") { try $0.write(bytes) }
        var chunks: [Int] = []
        var read: [UInt8] = []
        try bucket.stream("big", chunkSize: 300) { chunk in
            chunks.append(chunk.count)
            read.append(contentsOf: chunk)
        }
        #expect(chunks == [300, 300, 300, 100])
        #expect(read == bytes)
    }

    @Test("a failed write leaves nothing behind")
    func failedPut() throws {
        defer { cleanUp() }
        struct Interrupted: Error {}
        #expect(throws: Interrupted.self) {
            try bucket.put("x/data.json") { writer in
                try writer.write(Array("partial".utf8))
                throw Interrupted()
            }
        }
        #expect(try bucket.list() == [])
        #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/x") == [])
    }

    @Test("unsafe keys are refused before they reach a path", arguments: ["", "/etc/passwd", "a/../b", "./a", "a//b", "a/", "a\u{0}b"])
    func unsafeKeys(key: String) {
        #expect(throws: StarpipeError.self) { try BucketKey.check(key) }
        #expect(throws: StarpipeError.self) { try bucket.read(key) }
        #expect(throws: StarpipeError.self) { try bucket.size(key) }
        #expect(throws: StarpipeError.self) { try bucket.put(key) { _ in } }
    }

    @Test("a missing object is a bucket error")
    func missing() {
        defer { cleanUp() }
        #expect(throws: StarpipeError(.bucket, "object none cannot be read")) { try bucket.read("none") }
    }
}
