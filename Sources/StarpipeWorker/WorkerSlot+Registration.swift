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
        for key in keys where try register(key, known: known[key]) == .registered {
            registered += 1
        }
        return registered
    }

    /// What became of one manifest key offered for registration.
    enum Registration: Equatable {
        /// A new job (or DUPLICATE) was recorded.
        case registered
        /// Not a manifest key, or the ledger holds it already: nothing to do.
        case nothing
        /// The manifest or the database refused it; logged. It stays refused until someone fixes or removes it.
        case rejected
    }

    /// Registers one key named by a bucket event: the ledger's content for it is looked up first.
    func register(eventKey key: String) throws -> Registration {
        let content = try query("SELECT run_id || ' ' || sha256 FROM starpipe.job WHERE manifest_key = $1", [key]).rows
            .compactMap { $0[0] }
        return try register(key, known: content.isEmpty ? nil : Set(content))
    }

    /// Registers `key` when it is a manifest whose content (`run_id sha256`) is not among `known`. A manifest that
    /// cannot be read or registered is logged and reported as rejected; a database that is gone is thrown.
    func register(_ key: String, known: Set<String>?) throws -> Registration {
        let manifestKey: ManifestKey
        let manifest: Manifest
        let text: Data
        do {
            guard let parsed = try ManifestKey.parse(key) else { return .nothing }
            if parsed.layout == .structured, known != nil { return .nothing }
            manifestKey = parsed
            text = try options.retry.run("read a manifest", logger: logger) { try bucket.read(key) }
            manifest = try Manifest.decode(text)
            if known?.contains("\(manifest.runId) \(manifest.sha256)") == true { return .nothing }
            try manifestKey.check(manifest)
        } catch {
            logger.error("manifest rejected; fix or remove it", metadata: ["starpipe.key": "\(key)", "starpipe.error": "\(error)"])
            return .rejected
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
            return .rejected
        }
        guard result.value(0, "created") == "t" else { return .nothing }
        logger.info("registered", metadata: [
            "starpipe.job_id": "\(result.value(0, "job_id") ?? "")", "starpipe.status": "\(result.value(0, "status") ?? "")",
            "starpipe.key": "\(key)",
        ])
        return .registered
    }
}
