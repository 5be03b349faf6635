import StarpipeBucket
import StarpipeCore
import Testing

@Suite("SQS queue URLs")
struct SQSLocationTests {
    @Test("an AWS queue: https, region from the host")
    func aws() throws {
        let location = try SQSLocation(url: "sqs://sqs.eu-west-1.amazonaws.com/123456789012/starpipe-events", environment: [:])
        #expect(location.queueURL == "https://sqs.eu-west-1.amazonaws.com/123456789012/starpipe-events")
        #expect(location.region == "eu-west-1")
    }

    @Test("a local peer: the port and scheme=http, region given")
    func local() throws {
        let location = try SQSLocation(url: "sqs://127.0.0.1:55000/123456789012/events?region=us-east-1&scheme=http", environment: [:])
        #expect(location.queueURL == "http://127.0.0.1:55000/123456789012/events")
        #expect(location.region == "us-east-1")
    }

    @Test("malformed queue URLs are configuration errors", arguments: [
        "https://sqs.eu-west-1.amazonaws.com/1/q", "sqs://host/only-queue", "sqs://host/1/q?scheme=ftp", "sqs://host/1/q?visibility=3",
    ])
    func refused(url: String) {
        #expect(throws: StarpipeError.self) { try SQSLocation(url: url, environment: [:]) }
    }
}
