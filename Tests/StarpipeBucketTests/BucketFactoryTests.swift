import StarpipeBucket
import StarpipeCore
import Foundation
import Testing

@Suite("Bucket URLs")
struct BucketFactoryTests {
    @Test("file URLs open a local bucket at their path")
    func file() throws {
        let bucket = try #require(try BucketFactory.open("file:///var/starpipe/bucket") as? LocalBucket)
        #expect(bucket.root == "/var/starpipe/bucket")
    }

    @Test("s3 URLs open an S3 bucket with credentials from the environment")
    func s3() throws {
        setenv("AWS_ACCESS_KEY_ID", "AKIDFACTORY", 1)
        setenv("AWS_SECRET_ACCESS_KEY", "factory-secret", 1)
        let bucket = try #require(try BucketFactory.open("s3://data-bucket/landing/acme?region=eu-west-1") as? S3Bucket)
        #expect(bucket.location.bucket == "data-bucket")
        #expect(bucket.location.prefix == "landing/acme/")
    }

    @Test("other schemes and non-URLs are configuration errors", arguments: ["gs://bucket/prefix", "not a url", "file://", "s3://", "s3://bucket/p?endpoint=ftp://x", "s3://bucket/p?part_size=0", "s3://bucket/p?unknown=1"])
    func refused(url: String) {
        #expect(throws: StarpipeError.self) { try BucketFactory.open(url) }
        do {
            _ = try BucketFactory.open(url)
        } catch {
            #expect(error.code == .configuration)
        }
    }
}
