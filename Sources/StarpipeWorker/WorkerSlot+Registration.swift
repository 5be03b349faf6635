import Foundation
import StarpipeBucket
import StarpipeCore
import StarpipePostgres

/// Registration, the stage before a job exists: manifests in the bucket become jobs in the ledger.
extension WorkerSlot {
    /// Registers every manifest in the bucket that the ledger does not know yet; returns how many.
    /// Data files without a manifest are never looked at.
    ///
    /// A structured key names one extraction (its run id is in the key), so a known one is not read again.
    /// A flat key (`<TABLE>-<CLIENT>-<DDMMYYYY>.manifest.json`) carries no run id: a client may upload a
    /// corrected file under the same name, so known flat manifests are read on every scan and registered
    /// again when their run id or sha256 is not one the ledger holds for that key. The extension refuses
    /// different content under an existing run id (SP005), which is logged on every scan until fixed.
    @discardableResult
    func discover() throws -> Int {
        var known: [String: Set<String>] = [:]
        for row in try query("SELECT manifest_key, run_id || ' ' || sha256 FROM starpipe.job").rows {
            if let key = row[0], let content = row[1] { known[key, default: []].insert(content) }
        }
        let keys = try options.retry.run("list the bucket", logger: logger) { try bucket.list() }
        var registered = 0
        for key in keys {
            let manifestKey: ManifestKey
            let manifest: Manifest
            let text: Data
            do {
                guard let parsed = try ManifestKey.parse(key) else { continue }
                if parsed.layout == .structured, known[key] != nil { continue }
                manifestKey = parsed
                text = try options.retry.run("read a manifest", logger: logger) { try bucket.read(key) }
                manifest = try Manifest.decode(text)
                if known[key]?.contains("\(manifest.runId) \(manifest.sha256)") == true { continue }
                try manifestKey.check(manifest)
            } catch {
                logger.error("manifest rejected; fix or remove it", metadata: ["starpipe.key": "\(key)", "starpipe.error": "\(error)"])
                continue
            }
            let result: PostgresResult
            do {
                result = try query(
                    "SELECT job_id, status, created FROM starpipe.register($1::jsonb, $2, $3)",
                    [String(decoding: text, as: UTF8.self), key, manifestKey.dataKey(dataFile: manifest.dataFile)])
            } catch where ErrorDecision.outcome(for: .init(error), at: .registration, attempt: .spent,
                                                shutdown: .init(worker.stop)) == .fail {
                // One bad manifest must not stop the others; it is logged on every scan until fixed.
                logger.error("manifest rejected by the database; fix or remove it", metadata: ["starpipe.key": "\(key)", "starpipe.error": "\(error)"])
                continue
            }
            if result.value(0, "created") == "t" {
                registered += 1
                logger.info("registered", metadata: [
                    "starpipe.job_id": "\(result.value(0, "job_id") ?? "")", "starpipe.status": "\(result.value(0, "status") ?? "")",
                    "starpipe.key": "\(key)",
                ])
            }
        }
        return registered
    }
}
