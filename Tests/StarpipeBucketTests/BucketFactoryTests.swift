import StarpipeBucket
import StarpipeCore
import Testing

@Suite("Bucket URLs")
struct BucketFactoryTests {
    @Test("file URLs open a local bucket at their path")
    func file() throws {
        let bucket = try #require(try BucketFactory.open("file:///var/starpipe/bucket") as? LocalBucket)
        #expect(bucket.root == "/var/starpipe/bucket")
    }

    @Test("other schemes and non-URLs are configuration errors", arguments: ["s3://bucket/prefix", "not a url", "file://"])
    func refused(url: String) {
        #expect(throws: StarpipeError.self) { try BucketFactory.open(url) }
        do {
            _ = try BucketFactory.open(url)
        } catch {
            #expect(error.code == .configuration)
        }
    }
}
