@testable import StarpipeBucket
import StarpipeCore
import Testing

@Suite("S3 failures and answers")
struct S3FailureTests {
    @Test("5xx, 429, throttling and a lost connection are retried; 403, 404 and request errors are not")
    func transient() {
        #expect(S3Failure(status: 503, code: "SlowDown").isTransient)
        #expect(S3Failure(status: 500, code: "InternalError").isTransient)
        #expect(S3Failure(status: 400, code: "RequestTimeout").isTransient)
        #expect(S3Failure(status: 429, code: nil).isTransient)
        #expect(S3Failure(status: 200, code: "InternalError").isTransient)
        #expect(S3Failure(status: nil, code: nil, transport: "connection: remote closed").isTransient)
        #expect(!S3Failure(status: 403, code: "SignatureDoesNotMatch").isTransient)
        #expect(!S3Failure(status: 404, code: "NoSuchKey").isTransient)
        #expect(!S3Failure(status: 400, code: "InvalidPart").isTransient)
    }

    @Test("the error names operation, key and bucket; permanent failures are bucket_refused")
    func error() {
        let refused = S3Failure(status: 404, code: "NoSuchKey").error("read", key: "client=a/data.json", bucket: "landing")
        #expect(refused.code == .bucketRefused)
        #expect(refused.message == "S3 read of client=a/data.json in bucket landing failed: NoSuchKey, HTTP 404")
        #expect(S3Failure(status: 503, code: "SlowDown").error("list", key: nil, bucket: "landing").code == .bucket)
    }

    @Test("XML answers: the root and leaves; leading keep-alive whitespace before an <Error> in a 200 body")
    func xml() throws {
        let complete = try #require(S3XML(Array("   \n  <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code><Message>We encountered an internal error.</Message></Error>".utf8)))
        #expect(complete.root == "Error")
        #expect(complete.first("Code") == "InternalError")
        let list = try #require(S3XML(Array("<ListBucketResult><IsTruncated>true</IsTruncated><Contents><Key>a&amp;b.json</Key></Contents><Contents><Key>c.json</Key></Contents><NextContinuationToken>t/+=</NextContinuationToken></ListBucketResult>".utf8)))
        #expect(list.all("Key") == ["a&b.json", "c.json"])
        #expect(list.first("NextContinuationToken") == "t/+=")
        #expect(S3XML(Array("not xml <".utf8)) == nil)
    }

    @Test("full-jitter backoff stays below min(cap, base × 2^attempt); a permanent failure is not retried")
    func retry() {
        let policy = S3RetryPolicy(attempts: 4, baseSeconds: 0.001, capSeconds: 0.004)
        for attempt in 0..<10 { #expect(policy.delay(after: attempt) <= min(0.004, 0.001 * Double(1 << attempt))) }
        var calls = 0
        #expect(throws: S3Failure.self) {
            try policy.run { () throws(S3Failure) -> Int in
                calls += 1
                throw S3Failure(status: 403, code: "AccessDenied")
            }
        }
        #expect(calls == 1)
        calls = 0
        let value = try? policy.run { () throws(S3Failure) -> Int in
            calls += 1
            if calls < 3 { throw S3Failure(status: 503, code: "SlowDown") }
            return 7
        }
        #expect(value == 7)
        #expect(calls == 3)
    }
}
