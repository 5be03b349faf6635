import Foundation
import StarpipeBucket
import StarpipeCore
import Testing

/// The narrow set of requests moto checks signatures on faithfully (keys without `+ = & : % ü`, no `/` in query
/// values: getmoto/moto#5948): a wrong secret is refused, the right one passes. Everything else about signing is
/// proven by the known-answer vectors in StarpipeBucketTests.
@Suite("S3 signatures checked by moto")
struct S3AuthenticationTests {
    @Test("the right secret signs PUT, multipart upload, GET, HEAD and list; a wrong secret is refused for good")
    func rightAndWrongSecret() throws {
        let moto = try TestMoto()
        let name = "sp-auth-\(UInt32.random(in: 0...UInt32.max))"
        _ = try moto.makeBucket(name)
        let credentials = try moto.enableAuthentication()
        let bucket = try moto.open(name, credentials: credentials)
        let content = (0..<3000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        try bucket.put("data.json") { try $0.write(content) }
        try bucket.put("manifest.json") { try $0.write(Array("{}".utf8)) }
        #expect(try bucket.read("manifest.json") == Data("{}".utf8))
        #expect(try bucket.size("data.json") == 3000)
        var streamed: [UInt8] = []
        try bucket.stream("data.json", chunkSize: 1000) { streamed += $0 }
        #expect(streamed == content)
        #expect(try bucket.list() == ["data.json", "manifest.json"])

        let wrong = try moto.open(name, credentials: AWSCredentials(accessKeyID: credentials.accessKeyID,
                                                                    secretAccessKey: "not-the-secret"))
        do {
            _ = try wrong.list()
            Issue.record("a wrong secret listed the bucket")
        } catch {
            #expect(error.code == .bucketRefused)
            #expect(error.message.contains("SignatureDoesNotMatch"))
            #expect(!error.message.contains("not-the-secret"))
        }
        #expect(throws: StarpipeError.self) { try wrong.put("other.json") { try $0.write([1]) } }
        #expect(try bucket.list() == ["data.json", "manifest.json"])
        let unknown = try moto.open(name, credentials: AWSCredentials(accessKeyID: "AKIAUNKNOWN0000000000", secretAccessKey: "x"))
        #expect(throws: StarpipeError.self) { try unknown.read("manifest.json") }
    }
}
