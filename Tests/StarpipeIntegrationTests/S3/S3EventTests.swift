import Foundation
import Logging
import StarpipeBucket
import StarpipeCore
import StarpipeWorker
import Testing

/// `starpipe worker --events`: S3 event notifications through SQS (moto delivers them from its own S3), with the
/// queue's redrive policy to a dead-letter queue after two receives.
@Suite("S3 events through SQS")
struct S3EventTests {
    /// A moto server with a bucket (prefix `landing`) whose manifests notify a queue with a DLQ, and a Synthea
    /// pipeline on that bucket.
    struct Fixture {
        let moto: TestMoto
        let bucket: S3Bucket
        let demo: SyntheaPipeline
        let queue: (url: String, arn: String)
        let deadLetters: (url: String, arn: String)

        init() throws {
            moto = try TestMoto()
            let root = try moto.makeBucket()
            bucket = try moto.open(root.location.bucket, prefix: "landing", credentials: TestMoto.anyCredentials)
            deadLetters = try moto.createQueue("starpipe-dlq")
            queue = try moto.createQueue("starpipe-events", attributes: [
                "RedrivePolicy": #"{"deadLetterTargetArn":"\#(deadLetters.arn)","maxReceiveCount":"2"}"#,
            ])
            try moto.configureNotifications(bucket: root.location.bucket, prefix: "landing/", queueARN: queue.arn)
            demo = try SyntheaPipeline(bucket: bucket)
        }

        /// `sqs://127.0.0.1:PORT/ACCOUNT/QUEUE?…` for the events queue, through `port` (a proxy) if given.
        func eventsURL(port: Int? = nil) -> String {
            let path = URL(string: queue.url)!.path
            return "sqs://127.0.0.1:\(port ?? moto.port)\(path)?region=us-east-1&scheme=http"
        }

        func events() throws -> SQSQueue {
            SQSQueue(location: try SQSLocation(url: eventsURL()), credentials: TestMoto.anyCredentials,
                     retry: S3RetryPolicy(attempts: 3, baseSeconds: 0.05, capSeconds: 0.2))
        }

        /// Runs an in-process worker with events until `done` holds (or 60 s pass), then stops it.
        func work(sweepSeconds: Double = 3600, visibility: Int = 30, until done: () throws -> Bool) throws {
            let worker = Worker(
                options: WorkerOptions(databaseURL: demo.pipelineURL, pollSeconds: 0.2, sweepSeconds: sweepSeconds,
                                       eventVisibilitySeconds: visibility),
                bucket: bucket, events: try events(), logger: demo.logger)
            let finished = DispatchSemaphore(value: 0)
            let thread = Thread {
                try? worker.run()
                finished.signal()
            }
            thread.start()
            defer {
                worker.requestStop(deadline: 5)
                finished.wait()
            }
            let end = Date().addingTimeInterval(60)
            while Date() < end {
                if try done() { return }
                Thread.sleep(forTimeInterval: 0.2)
            }
            Issue.record("the worker did not get there in 60 s")
        }

        func key(_ manifest: Manifest, _ file: String) -> String {
            "landing/" + ManifestKey.structuredDirectory(client: manifest.client, table: manifest.table,
                                                         date: SnapshotDate(iso: manifest.snapshotDate)!, runID: manifest.runId) + file
        }
    }

    @Test("each manifest is registered once from its event: duplicates, reordering, the test event and other keys change nothing")
    func duplicatesAndReordering() throws {
        let fixture = try Fixture()
        let manifests = try fixture.demo.extract(tables: ["patients", "encounters"], runID: "events")
        // S3 sent the test event and one event per manifest (data.json is filtered out by the suffix rule). Add
        // duplicates in reverse order, and an event for a key that is not a manifest.
        try fixture.moto.notify(fixture.queue.url, bucket: fixture.bucket.location.bucket,
                                keys: manifests.reversed().map { fixture.key($0, "manifest.json") } + [fixture.key(manifests[0], "data.json")])
        // The test event, two events per manifest (each went up as a multipart upload with 1 KiB parts, and moto
        // sends ObjectCreated:Put and ObjectCreated:CompleteMultipartUpload for it), and the three sent here.
        #expect(try fixture.moto.messageCount(fixture.queue.url) == 1 + 2 * 2 + 3)
        try fixture.work {
            try fixture.demo.jobs().filter { $0.status == "SUCCESS" }.count == 2 && fixture.moto.messageCount(fixture.queue.url) == 0
        }
        let jobs = try fixture.demo.jobs()
        #expect(jobs.map(\.status) == ["SUCCESS", "SUCCESS"])
        #expect(Set(jobs.map(\.table)) == ["patients", "encounters"])
        #expect(try fixture.moto.messageCount(fixture.queue.url) == 0)
        #expect(try fixture.moto.messageCount(fixture.deadLetters.url) == 0)
    }

    @Test("a manifest whose event was lost is registered by the periodic sweep")
    func lostEventSwept() throws {
        let fixture = try Fixture()
        try fixture.demo.extract(tables: ["patients"], runID: "lost")
        // The events are lost.
        try fixture.moto.sqs("PurgeQueue", ["QueueUrl": fixture.queue.url])
        #expect(try fixture.moto.messageCount(fixture.queue.url) == 0)
        try fixture.work(sweepSeconds: 1) { try fixture.demo.jobs().first?.status == "SUCCESS" }
        #expect(try fixture.demo.jobs().map(\.status) == ["SUCCESS"])
    }

    @Test("a poison message goes to the dead-letter queue after maxReceiveCount receives; good events still register")
    func poisonToDeadLetters() throws {
        let fixture = try Fixture()
        try fixture.moto.sqs("SendMessage", ["QueueUrl": fixture.queue.url, "MessageBody": "not an S3 event"])
        try fixture.demo.extract(tables: ["patients"], runID: "poison")
        try fixture.work(visibility: 1) {
            try fixture.moto.messageCount(fixture.deadLetters.url) == 1 && fixture.demo.jobs().first?.status == "SUCCESS"
        }
        #expect(try fixture.moto.messageCount(fixture.deadLetters.url) == 1)
        let dead = try #require(try fixture.moto.sqs("ReceiveMessage", ["QueueUrl": fixture.deadLetters.url])["Messages"] as? [[String: Any]])
        #expect(dead.first?["Body"] as? String == "not an S3 event")
        #expect(try fixture.moto.messageCount(fixture.queue.url) == 0)
        #expect(try fixture.demo.jobs().count == 1)
    }

    @Test("SIGKILL between registration and the event's delete: the redelivered event registers nothing twice")
    func killedBeforeDelete() throws {
        let fixture = try Fixture()
        try fixture.moto.sqs("PurgeQueue", ["QueueUrl": fixture.queue.url]) // the test event
        // The worker talks to SQS through a proxy that holds its first DeleteMessage after registration.
        let proxy = try FaultProxy(upstreamPort: fixture.moto.port, marker: "AmazonSQS.DeleteMessage", fault: .hold)
        defer { proxy.stop() }
        try fixture.demo.extract(tables: ["patients"], runID: "killed")
        let environment = ["AWS_ACCESS_KEY_ID": TestMoto.anyCredentials.accessKeyID,
                           "AWS_SECRET_ACCESS_KEY": "starpipe-test-secret"]
        let bucketURL = fixture.moto.bucketURL(fixture.bucket.location.bucket, prefix: "landing")
        let first = try WorkerProcess(database: fixture.demo.pipelineURL, bucketURL: bucketURL, arguments: [
            "--events", fixture.eventsURL(port: proxy.port), "--event-visibility", "2", "--sweep-interval", "3600",
            "--poll-interval", "0.2", "--lease", "3",
        ], environment: environment)
        #expect(proxy.waitForStrike(timeout: 60), "the worker never deleted its event: \(first.log())")
        first.signal(SIGKILL)
        _ = first.waitForExit(timeout: 10)
        // Registered (committed) before the delete was attempted; the event is still in the queue.
        let registered = try fixture.demo.jobs()
        #expect(registered.count == 1)
        // Both of moto's events for the (multipart) manifest are still there: the first was being deleted.
        #expect(try fixture.moto.messageCount(fixture.queue.url) == 2)
        // A new worker gets the events again once their visibility runs out, and registers nothing new (it also takes
        // over the job if the first worker had claimed it, once that lease of 3 s runs out).
        let second = try WorkerProcess(database: fixture.demo.pipelineURL, bucketURL: bucketURL, arguments: [
            "--events", fixture.eventsURL(), "--event-visibility", "2", "--sweep-interval", "3600", "--poll-interval", "0.2",
        ], environment: environment)
        let end = Date().addingTimeInterval(60)
        while Date() < end, try fixture.moto.messageCount(fixture.queue.url) > 0 || fixture.demo.jobs().first?.status != "SUCCESS" {
            Thread.sleep(forTimeInterval: 0.2)
        }
        second.signal(SIGTERM)
        #expect(second.waitForExit(timeout: 30) == 0, "\(second.log())")
        #expect(try fixture.moto.messageCount(fixture.queue.url) == 0)
        let jobs = try fixture.demo.jobs()
        #expect(jobs.map(\.status) == ["SUCCESS"], "\(jobs)")
        #expect(try fixture.moto.messageCount(fixture.deadLetters.url) == 0)
    }

    @Test("a received message stays hidden while its visibility is extended, and reappears once it runs out")
    func visibilityExtension() throws {
        let moto = try TestMoto()
        let created = try moto.createQueue("starpipe-visibility")
        let queue = SQSQueue(
            location: try SQSLocation(url: "sqs://127.0.0.1:\(moto.port)\(URL(string: created.url)!.path)?region=us-east-1&scheme=http"),
            credentials: TestMoto.anyCredentials)
        try moto.sqs("SendMessage", ["QueueUrl": created.url, "MessageBody": "extended"])
        let first = try queue.receive(maxMessages: 1, waitSeconds: 0, visibilitySeconds: 1)
        #expect(first.map(\.body) == ["extended"])
        try queue.extendVisibility(try #require(first.first), seconds: 60)
        Thread.sleep(forTimeInterval: 2.5)
        #expect(try queue.receive(maxMessages: 1, waitSeconds: 0, visibilitySeconds: 1).isEmpty)
        // Without the extension, a message is handed out again after its timeout.
        try moto.sqs("SendMessage", ["QueueUrl": created.url, "MessageBody": "not extended"])
        #expect(try queue.receive(maxMessages: 1, waitSeconds: 0, visibilitySeconds: 1).map(\.body) == ["not extended"])
        Thread.sleep(forTimeInterval: 2.5)
        let again = try queue.receive(maxMessages: 1, waitSeconds: 0, visibilitySeconds: 1)
        #expect(again.map(\.body) == ["not extended"])
        #expect(again.first?.receiveCount == 2)
    }
}
