import AsyncHTTPClient
import Foundation
import NIOCore
import StarpipeCore
import StarpipePostgres
import StarpipeWorker
import Testing

/// Issue 14 after a real worker run with one job broken on purpose (its data file truncated after extraction):
/// `starpipe status` filters find it, `starpipe trace` says where it stopped and why, two workers' `/metrics`
/// agree on the ledger, `promtool check metrics` accepts the exposition, and a PHI canary planted in the
/// source never appears in any of it.
@Suite("Observability: status, trace and /metrics", .serialized)
struct ObservabilityTests {
    /// Planted in a patient's first name in the client database; production gets it, operators' tools never do.
    static let canary = "CANARY-obs-qxzw"

    /// Runs `starpipe ARGS`; returns its exit status and everything it printed.
    private func starpipe(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try WorkerProcess.cli(arguments)
    }

    private func json(_ text: String) throws -> Any {
        try JSONSerialization.jsonObject(with: Data(text.utf8))
    }

    /// The demo with the allergies job broken on purpose (its data file truncated) and the canary in a patient.
    private func brokenDemo() throws -> SyntheaPipeline {
        try SyntheaPipeline.withBrokenJob(canary: Self.canary, runID: "obs")
    }

    private func scrape(_ port: Int) async throws -> String {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(30))
        #expect(response.status == .ok)
        #expect(response.headers.first(name: "content-type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let body = try await response.body.collect(upTo: 16 << 20)
        return String(buffer: body)
    }

    /// The value of the sample `name{labels}` (labels in the exposition's order), or nil.
    private func sample(_ text: String, _ series: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last!) }
    }

    /// Samples of the ledger's metrics that do not move with the clock (ages are left out).
    private func ledgerSamples(_ text: String) -> [String] {
        text.split(separator: "\n").map(String.init).filter { line in
            !line.hasPrefix("#") && ["starpipe_jobs{", "starpipe_rows{", "starpipe_queue_depth{", "starpipe_dlq_depth{",
                                    "starpipe_retries_total{", "starpipe_drift_", "starpipe_last_promotion_", "starpipe_ledger_up"]
                .contains { prefix in line.hasPrefix(prefix) }
        }.sorted()
    }

    @Test("after a run with one job broken: status filters, trace and two workers' /metrics answer where and why, without a value")
    func brokenJob() async throws {
        let demo = try brokenDemo()
        let pipeline = try demo.pipeline()
        let port = Int.random(in: 9400...9449)
        let worker = try WorkerProcess(database: demo.pipelineURL, bucket: demo.bucketDirectory,
                                       arguments: ["--metrics-listen", "127.0.0.1:\(port)", "--poll-interval", "0.5",
                                                   "--log-format", "json"])
        #expect(try demo.waitUntilSettled(pipeline, jobs: 2), "the jobs did not settle: \(worker.log())")
        let jobs = try pipeline.query("SELECT job_id, table_name, status FROM starpipe.job ORDER BY job_id").rows
        let broken = try #require(jobs.first { $0[1] == "allergies" })
        let good = try #require(jobs.first { $0[1] == "patients" })
        #expect(broken[2] == "FAILED" && good[2] == "SUCCESS", "\(jobs)")
        #expect(try demo.count("SELECT count(*) FROM production.patients WHERE first_name = '\(Self.canary)'", on: pipeline) == 1,
                "the canary must reach production, or its absence below proves nothing")

        // Which job is failing: status filters.
        let failed = try starpipe(["status", "--status", "FAILED,DEAD", "--json", "--database", demo.pipelineURL])
        #expect(failed.status == 0, "\(failed.output)")
        let failedJobs = try #require(try json(failed.output) as? [[String: Any]])
        #expect(failedJobs.map { "\($0["job_id"]!)" } == [broken[0]!])
        let patients = try #require(try json(try starpipe(["status", "--client", demo.client, "--table", "patients", "--since", "1h", "--json",
                                                             "--database", demo.pipelineURL]).output) as? [[String: Any]])
        #expect(patients.map { "\($0["job_id"]!)" } == [good[0]!])
        let future = try starpipe(["status", "--since", "2999-01-01T00:00:00Z", "--json", "--database", demo.pipelineURL])
        #expect(future.output.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
        let unknown = try starpipe(["status", "--status", "STUCK", "--database", demo.pipelineURL])
        #expect(unknown.status != 0 && unknown.output.contains("unknown status STUCK"))
        let watched = try starpipe(["status", "--watch", "--interval", "0.05", "--refreshes", "2", "--database", demo.pipelineURL])
        #expect(watched.status == 0)
        #expect(watched.output.components(separatedBy: "job  client").count - 1 == 2, "\(watched.output)")
        #expect(watched.output.contains("FAILED"))

        // Where it stopped and why: trace.
        let text = try starpipe(["trace", broken[0]!, "--database", demo.pipelineURL])
        #expect(text.status == 0, "\(text.output)")
        #expect(text.output.contains("status FAILED at stage registered"))
        #expect(text.output.contains("error: "))
        #expect(text.output.contains("client=synthea_demo/table=allergies/"))
        #expect(text.output.contains("events:") && text.output.contains("claim"))
        let brokenTrace = try #require(try json(try starpipe(["trace", broken[0]!, "--json", "--database", demo.pipelineURL]).output)
            as? [String: Any])
        let reason = try #require(brokenTrace["error"] as? String)
        #expect(reason.contains("mismatch"), "\(reason)")
        #expect(text.output.contains(reason))
        let brokenEvents = try #require(brokenTrace["events"] as? [[String: Any]])
        #expect(brokenEvents.last?["to_status"] as? String == "FAILED")
        #expect((brokenTrace["rows"] as? [String: Any])?["raw"] is NSNull)
        let goodTrace = try #require(try json(try starpipe(["trace", good[0]!, "--json", "--database", demo.pipelineURL]).output)
            as? [String: Any])
        let rows = try #require(goodTrace["rows"] as? [String: Any])
        #expect((rows["raw"] as? Int) == (rows["manifest"] as? Int))
        #expect((rows["promoted"] as? Int ?? 0) > 0)
        #expect(((goodTrace["promotion"] as? [String: Any])?["inserted"] as? Int ?? 0) > 0)
        #expect((goodTrace["mapping"] as? [String: Any])?["version"] as? Int == 1)
        let spans = try #require(goodTrace["time_in_stage"] as? [[String: Any]])
        #expect(spans.map { "\($0["status"]!) \($0["stage"]!)" }
                == ["PENDING registered", "PROCESSING registered", "PROCESSING raw_loaded", "PROCESSING transformed", "PROCESSING validated"])
        let missing = try starpipe(["trace", "999999", "--database", demo.pipelineURL])
        #expect(missing.status != 0 && missing.output.contains("job 999999 does not exist"))

        // From /metrics, on two workers: the ledger's samples agree; each has its own stage histograms.
        let first = try await scrape(port)
        #expect(sample(first, #"starpipe_jobs{client="synthea_demo",status="FAILED",table="allergies"}"#) == 1, "\(first)")
        #expect(sample(first, #"starpipe_jobs{client="synthea_demo",status="SUCCESS",table="patients"}"#) == 1)
        #expect(sample(first, #"starpipe_dlq_depth{client="synthea_demo",table="allergies"}"#) == 0)
        #expect(sample(first, "starpipe_ledger_up") == 1)
        #expect((sample(first, #"starpipe_last_promotion_timestamp_seconds{client="synthea_demo",table="patients"}"#) ?? 0)
                > Date().timeIntervalSince1970 - 3600)
        let promoted = try demo.count("SELECT rows_inserted + rows_updated FROM starpipe.job WHERE job_id = \(good[0]!)", on: pipeline)
        #expect(sample(first, #"starpipe_rows{client="synthea_demo",stage="promoted",table="patients"}"#) == Double(promoted))
        // The third question at a client table's grain: the job that last wrote patients (trace it for its files),
        // and its rows; allergies, never promoted, has neither.
        #expect(sample(first, #"starpipe_last_promotion_job_id{client="synthea_demo",table="patients"}"#) == Double(good[0]!))
        #expect(sample(first, #"starpipe_last_promotion_rows{client="synthea_demo",table="patients"}"#) == Double(promoted))
        #expect(sample(first, #"starpipe_last_promotion_job_id{client="synthea_demo",table="allergies"}"#) == nil)
        #expect(sample(first, #"starpipe_stage_duration_seconds_count{client="synthea_demo",stage="promote",table="patients"}"#) == 1)
        #expect(sample(first, #"starpipe_stage_duration_seconds_count{client="synthea_demo",stage="raw",table="allergies"}"#) == 1)
        #expect((sample(first, "process_resident_memory_bytes") ?? 0) > Double(1 << 20))
        #expect(sample(first, "starpipe_worker_lease_seconds") == 300)

        let secondPort = port + 50
        let second = try WorkerProcess(database: demo.pipelineURL, bucket: demo.bucketDirectory,
                                       arguments: ["--metrics-listen", "127.0.0.1:\(secondPort)", "--lease", "120"])
        var other = ""
        let end = Date().addingTimeInterval(60)
        while other.isEmpty, Date() < end {
            other = (try? await scrape(secondPort)) ?? ""
            if other.isEmpty { try await Task.sleep(for: .milliseconds(200)) }
        }
        #expect(ledgerSamples(other) == ledgerSamples(try await scrape(port)))
        #expect(!ledgerSamples(other).isEmpty)
        #expect(sample(other, "starpipe_worker_lease_seconds") == 120)
        #expect(!other.contains("starpipe_stage_duration_seconds_count{"), "the second worker ran no stage")

        // promtool lints the exposition (HELP and TYPE for every family, names and units).
        let exposition = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-metrics-\(port).txt")
        try first.write(to: exposition, atomically: true, encoding: .utf8)
        let check = Process()
        check.executableURL = URL(fileURLWithPath: "/bin/sh")
        check.arguments = ["-c", "promtool check metrics < '\(exposition.path)'"]
        let checkOutput = Pipe()
        check.standardOutput = checkOutput
        check.standardError = checkOutput
        try check.run()
        let lint = String(decoding: checkOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        check.waitUntilExit()
        #expect(check.terminationStatus == 0, "promtool check metrics: \(lint)")

        // Never a value: not in the status, the traces, the metrics or either worker's log.
        worker.signal(SIGTERM)
        second.signal(SIGTERM)
        #expect(worker.waitForExit(timeout: 60) == 0)
        #expect(second.waitForExit(timeout: 60) == 0)
        // JSON logs: every line an object; a job's lines carry job_id, client, table and stage.
        let log = worker.log()
        let lines = log.split(separator: "\n").filter { !$0.isEmpty }
        let objects = lines.compactMap { try? json(String($0)) as? [String: Any] }
        #expect(objects.count == lines.count && !lines.isEmpty, "lines that are not JSON objects in: \(log)")
        #expect(objects.contains {
            $0["message"] as? String == "raw version loaded" && "\($0["job_id"] ?? "")" == good[0]! && $0["client"] as? String == demo.client
                && $0["table"] as? String == "patients" && $0["stage"] as? String == "raw" && $0["ts"] is String && $0["level"] as? String == "info"
        }, "\(log)")
        #expect(objects.contains { "\($0["job_id"] ?? "")" == broken[0]! && $0["table"] as? String == "allergies" })
        let everything = [failed.output, watched.output, text.output, try starpipe(["status", "--database", demo.pipelineURL]).output,
                          try starpipe(["trace", good[0]!, "--database", demo.pipelineURL]).output,
                          try starpipe(["trace", good[0]!, "--json", "--database", demo.pipelineURL]).output,
                          first, other, log, second.log()]
        for (index, output) in everything.enumerated() {
            #expect(!output.contains(Self.canary), "the canary leaked into output \(index)")
        }
    }

    @Test("webhook alerts: the broken job is posted once, retried past a 503, named by job, client, table and reason, never a value")
    func webhookAlerts() throws {
        let demo = try brokenDemo()
        let listener = try WebhookListener(failing: 1)
        var logger = demo.logger
        logger.logLevel = .error
        let options = WorkerOptions(databaseURL: demo.pipelineURL, untilIdle: true,
                                    retry: RetryPolicy(baseSeconds: 0.05, capSeconds: 0.2, attempts: 4),
                                    alertWebhook: "http://127.0.0.1:\(listener.port)/hooks/starpipe")
        try Worker(options: options, bucket: demo.bucket, logger: logger).run()
        let pipeline = try demo.pipeline()
        let broken = try #require(try pipeline.query("SELECT job_id::text, error FROM starpipe.job WHERE table_name = 'allergies'").rows.first)
        let bodies = listener.bodies
        #expect(bodies.count == 2, "one 503, then the same alert again: \(bodies)")
        #expect(Set(bodies).count == 1)
        let body = try #require(bodies.last)
        let alert = try #require(try json(body) as? [String: Any])
        let fields = try #require(alert["starpipe"] as? [String: Any])
        #expect("\(fields["job_id"]!)" == broken[0]!)
        #expect(fields["client"] as? String == demo.client)
        #expect(fields["table"] as? String == "allergies")
        #expect(fields["alert"] as? String == "job_failed")
        #expect(fields["reason"] as? String == broken[1]!)
        let text = try #require(alert["text"] as? String)
        #expect(text.contains("job \(broken[0]!) of \(demo.client).allergies FAILED"), "\(text)")
        let ledger = try #require(try pipeline.query(
            "SELECT count(*)::text, bool_and(sent_at IS NOT NULL)::text, max(attempts)::text FROM starpipe.alert").rows.first)
        #expect(ledger == ["1", "true", "1"])
        // Repeats are the same alert: another run (another worker, say) sends nothing more.
        try Worker(options: options, bucket: demo.bucket, logger: logger).run()
        #expect(listener.bodies.count == 2)
        #expect(try demo.count("SELECT count(*) FROM production.patients WHERE first_name = '\(Self.canary)'", on: pipeline) == 1)
        #expect(!listener.bodies.joined().contains(Self.canary))
    }
}
