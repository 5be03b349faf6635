import Foundation
import StarpipeCore
import StarpipePostgres
import Testing

/// Issue 14's demo: patients and allergies extracted, one patient's first name a PHI canary, and the allergies data
/// file truncated after extraction, so a worker run ends with patients SUCCESS and allergies FAILED.
extension SyntheaPipeline {
    static func withBrokenJob(canary: String, runID: String) throws -> SyntheaPipeline {
        let demo = try SyntheaPipeline()
        let source = try demo.source()
        try source.execute(#"UPDATE public.patients SET "FIRST" = '\#(canary)' WHERE "Id" = (SELECT "Id" FROM public.patients ORDER BY "Id" LIMIT 1)"#)
        let manifests = try demo.extract(tables: ["patients", "allergies"], runID: runID)
        let allergies = try #require(manifests.first { $0.table == "allergies" })
        let directory = demo.bucketDirectory + "/" + ManifestKey.structuredDirectory(
            client: allergies.client, table: allergies.table, date: SnapshotDate(iso: allergies.snapshotDate)!, runID: allergies.runId)
        let file = URL(fileURLWithPath: directory + "data.json")
        let data = try Data(contentsOf: file)
        try data.prefix(data.count - 100).write(to: file)
        return demo
    }

    /// Waits (bounded) until `jobs` jobs are registered and none is PENDING or PROCESSING.
    func waitUntilSettled(_ pipeline: PostgresConnection, jobs: Int) throws -> Bool {
        let end = Date().addingTimeInterval(120)
        while Date() < end {
            let settled = try pipeline.query(
                "SELECT count(*) = \(jobs) AND count(*) FILTER (WHERE status IN ('PENDING', 'PROCESSING')) = 0 FROM starpipe.job").scalar
            if settled == "t" { return true }
            Thread.sleep(forTimeInterval: 0.2)
        }
        return false
    }
}
