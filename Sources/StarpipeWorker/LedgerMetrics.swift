import Foundation
import Prometheus
import StarpipePostgres

/// The ledger's metrics (starpipe.metrics(): jobs by status, rows by stage, queue and DLQ depth, oldest claimable
/// age, retries, drift, last promotion, stage age), read from the pipeline database at each scrape into a fresh
/// registry. Every worker computes them with the same statement, so several workers' scrapes agree, and a label set
/// that is gone from the ledger is gone from the next scrape.
public final class LedgerMetrics: @unchecked Sendable {
    private let databaseURL: String
    private let lock = NSLock()
    private var connection: PostgresConnection?

    /// Gauge: 1 when the last scrape read the ledger, 0 when the database could not be read.
    public static let up = "starpipe_ledger_up"

    public init(databaseURL: String) {
        self.databaseURL = databaseURL
    }

    /// The ledger's metrics in the Prometheus text format; only `starpipe_ledger_up 0` when the database fails.
    public func exposition() -> String {
        lock.lock()
        defer { lock.unlock() }
        let registry = PrometheusCollectorRegistry()
        do {
            if connection == nil || !(connection?.isHealthy ?? false) {
                connection = try PostgresConnection(url: databaseURL, applicationName: "starpipe-metrics",
                                                    settings: PostgresConnection.pipelineSettings)
            }
            let rows = try connection!.query("SELECT name, help, labels::text, value::text FROM starpipe.metrics()").rows
            for row in rows {
                guard let name = row[0], let help = row[1], let value = row[3].flatMap(Double.init) else { continue }
                let labels = Self.labels(row[2])
                // Ledger counts that only grow (nacks, drifted schema versions) are counters; the rest are gauges.
                if name.hasSuffix("_total") {
                    registry.makeCounter(name: name, labels: labels, help: help).increment(by: value)
                } else {
                    registry.makeGauge(name: name, labels: labels, help: help).set(value)
                }
            }
            registry.makeGauge(name: Self.up, help: "1 when this scrape read the pipeline ledger, 0 when it could not.").set(1.0)
        } catch {
            connection = nil
            registry.makeGauge(name: Self.up, help: "1 when this scrape read the pipeline ledger, 0 when it could not.").set(0.0)
        }
        return registry.emitToString()
    }

    /// Label pairs from starpipe.metrics()'s labels object, sorted by name so every scrape orders them alike.
    static func labels(_ json: String?) -> [(String, String)] {
        guard let json, let object = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: String] else { return [] }
        return object.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
    }
}
