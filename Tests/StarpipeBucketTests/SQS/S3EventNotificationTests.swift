import StarpipeBucket
import Testing

@Suite("S3 event notifications")
struct S3EventNotificationTests {
    private static func record(_ key: String, bucket: String = "landing-bucket", event: String = "ObjectCreated:Put") -> String {
        #"{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"\#(event)","eventTime":"2026-12-03T10:00:00.000Z","s3":{"bucket":{"name":"\#(bucket)"},"object":{"key":"\#(key)","size":10,"sequencer":"0A1B"}}}"#
    }

    @Test("keys are form-decoded (+ is a space, then %XX) and made relative to the prefix")
    func keys() {
        let body = #"{"Records":[\#(Self.record("acme%2Fclient%3Dacme%2Ftable%3Dt%2Fa+b%2Bc%C3%BC%2Fmanifest.json")),\#(Self.record("acme/x/manifest.json"))]}"#
        #expect(S3EventNotification.decode(body, bucket: "landing-bucket", prefix: "acme/")
            == .created(["client=acme/table=t/a b+cü/manifest.json", "x/manifest.json"]))
    }

    @Test("the test event, other buckets, other prefixes and removals")
    func skipped() {
        #expect(S3EventNotification.decode(#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2026-12-03T10:00:00.000Z","Bucket":"landing-bucket"}"#,
                                           bucket: "landing-bucket", prefix: "") == .test)
        let others = #"{"Records":[\#(Self.record("a/manifest.json", bucket: "other")),\#(Self.record("b/manifest.json")),\#(Self.record("acme/c/manifest.json", event: "ObjectRemoved:Delete"))]}"#
        #expect(S3EventNotification.decode(others, bucket: "landing-bucket", prefix: "acme/") == .created([]))
    }

    @Test("bodies that are not S3 notifications are unreadable (poison)", arguments: [
        "not json", "{}", #"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#, #"{"Records":[\#(record("bad%ZZkey"))]}"#,
    ])
    func poison(body: String) {
        #expect(S3EventNotification.decode(body, bucket: "landing-bucket", prefix: "") == .unreadable)
    }
}
