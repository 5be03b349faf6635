import Foundation
import StarpipePostgres
import Testing

/// An idle worker sleeps in LISTEN, not in a polling loop: a registration wakes it at once.
@Suite("Worker wake-up")
struct WakeUpTests {
    @Test("a registration wakes an idle worker long before its next poll")
    func notifyWakesIdleWorker() throws {
        let large = try LargeFile(rows: 100)
        // Hide the files so the worker's first scan finds nothing and it goes idle (next scan in 60 s).
        let hidden = large.bucketDirectory + "-hidden"
        try FileManager.default.moveItem(atPath: large.bucketDirectory, toPath: hidden)
        try FileManager.default.createDirectory(atPath: large.bucketDirectory, withIntermediateDirectories: true)
        let worker = try WorkerProcess(database: large.pipelineURL, bucket: large.bucketDirectory, arguments: ["--poll-interval", "60"])
        Thread.sleep(forTimeInterval: 1.5)
        try FileManager.default.removeItem(atPath: large.bucketDirectory)
        try FileManager.default.moveItem(atPath: hidden, toPath: large.bucketDirectory)

        // Another process registers the manifest (as a bucket-event hook would).
        let key = "client=bigco/table=events/date=20261126/run_id=r1/"
        let manifest = try String(contentsOfFile: large.bucketDirectory + "/" + key + "manifest.json", encoding: .utf8)
        try large.connection().query("SELECT starpipe.register($1::jsonb, $2, $3)",
                                     [manifest, key + "manifest.json", key + "data.json"])
        #expect(try large.wait(timeout: 10) { try large.job()?.status == "SUCCESS" })
        let latency = try large.connection().query("""
            SELECT round(extract(epoch FROM (SELECT min(at) FROM starpipe.job_event WHERE event = 'claim')
                                        - (SELECT min(at) FROM starpipe.job_event WHERE event = 'registered')) * 1000)
            """).scalar ?? "?"
        print("notify wake-up: claimed \(latency) ms after the registration")
        worker.signal(SIGTERM)
        #expect(worker.waitForExit(timeout: 30) == 0)
    }
}
