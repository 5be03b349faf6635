import Foundation
import StarpipeCore
import StarpipePostgres

/// A job this worker holds, with the fencing token every state change must present.
struct ClaimedJob {
    var id: Int64
    var fence: Int64
    var client: String
    var table: String
    var stage: JobStage
    var dataKey: String
    var manifest: Manifest

    /// Parameters `$1, $2` of every fenced extension call.
    var fenced: [String?] { [String(id), String(fence)] }

    /// Claims the next job, or returns nil when none is claimable now.
    static func claim(_ connection: PostgresConnection, workerID: String, leaseSeconds: Int) throws -> ClaimedJob? {
        let result = try connection.query(
            "SELECT job_id, fence, client, table_name, stage, data_key, manifest::text FROM starpipe.claim($1, $2::interval)",
            [workerID, "\(leaseSeconds) seconds"])
        guard let row = result.rows.first else { return nil }
        let id = Int64(row[0]!)!
        let fence = Int64(row[1]!)!
        let manifest: Manifest
        do {
            manifest = try Manifest.decode(Data(row[6]!.utf8))
        } catch {
            // Registered by another tool with a manifest this worker cannot use: the job fails, the worker goes on.
            throw UnreadableManifest(jobID: id, fence: fence, reason: error.message)
        }
        guard let stage = JobStage(rawValue: row[4]!) else {
            // The ledger's CHECK allows only known stages; a newer extension's stage is not this worker's to drive.
            throw UnreadableManifest(jobID: id, fence: fence, reason: "stage \(row[4]!) is unknown to this worker")
        }
        return ClaimedJob(id: id, fence: fence, client: row[2]!, table: row[3]!, stage: stage, dataKey: row[5]!, manifest: manifest)
    }
}

/// A claimed job whose stored manifest this worker cannot read.
struct UnreadableManifest: Error {
    var jobID: Int64
    var fence: Int64
    var reason: String
}
