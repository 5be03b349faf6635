import Foundation
@testable import StarpipeWorker
import Testing

/// The process's own metrics: what swift-metrics records reaches the Prometheus exposition, with HELP text,
/// labels sorted by name, and no key in a label.
@Suite("Worker metrics")
struct WorkerMetricsTests {
    @Test("a recorded stage is a histogram in seconds with client, stage and table labels, and every family has HELP")
    func stageHistogram() {
        let metrics = WorkerMetrics()
        metrics.recordStage("transform", client: "acme", table: "visits", duration: .milliseconds(1500))
        metrics.recordRetry(WorkerMetrics.operationLabel("ingest client=acme/table=visits/date=20261101/run_id=r1/data.json"))
        metrics.recordLock(client: "acme", duration: .milliseconds(3), heldByAnother: true)
        metrics.recordConfiguration(WorkerOptions(databaseURL: "postgresql://unused", concurrency: 2, leaseSeconds: 120))
        let text = metrics.exposition()
        let series = #"starpipe_stage_duration_seconds"#
        #expect(text.contains(#"\#(series)_count{client="acme",stage="transform",table="visits"} 1"#), "\(text)")
        #expect(text.contains(#"\#(series)_bucket{client="acme",stage="transform",table="visits",le="1.0"} 0"#), "\(text)")
        #expect(text.contains(#"\#(series)_bucket{client="acme",stage="transform",table="visits",le="2.5"} 1"#), "\(text)")
        #expect(text.contains(#"starpipe_worker_retries_total{operation="ingest"} 1"#), "\(text)")
        #expect(text.contains(#"starpipe_lock_waits_total{client="acme"} 1"#), "\(text)")
        #expect(text.contains("starpipe_worker_lease_seconds 120"), "\(text)")
        #expect(text.contains("starpipe_worker_slots 2"), "\(text)")
        let families = text.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] }
        #expect(!families.isEmpty)
        for family in families {
            #expect(text.contains("# HELP \(family) "), "no HELP for \(family)")
        }
    }

    @Test("operation labels stop before the first word that names a key")
    func operationLabels() {
        #expect(WorkerMetrics.operationLabel("ingest client=a/table=b/data.json") == "ingest")
        #expect(WorkerMetrics.operationLabel("take the client's Redis lock") == "take the client's Redis lock")
        #expect(WorkerMetrics.operationLabel("claim") == "claim")
    }

    @Test("HELP goes before a TYPE line once, and only for known names")
    func help() {
        let text = "# TYPE a counter\na 1\n# HELP b given\n# TYPE b gauge\nb 2\n# TYPE c gauge\nc 3"
        let result = WorkerMetrics.addingHelp(text, ["a": "the a", "b": "the b"])
        #expect(result == "# HELP a the a\n# TYPE a counter\na 1\n# HELP b given\n# TYPE b gauge\nb 2\n# TYPE c gauge\nc 3")
    }
}
