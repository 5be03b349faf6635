import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import StarpipePostgres

/// Posts the ledger's webhook alerts (starpipe.queue_alerts, claim_alerts, settle_alert) as JSON that Slack's
/// incoming webhooks accept (`text`), with the alert's fields under `starpipe`. The ledger decides what is due and
/// remembers what was sent, so alerts work without Prometheus and several workers send each one once. Each post is
/// retried with the worker's backoff; one that still fails is offered again after its hold. An alert names its job,
/// client, table and reason (the job's error, which cites row numbers), never a row's value.
final class AlertNotifier: @unchecked Sendable {
    private let url: String
    private let worker: Worker
    private let logger: Logger
    private var connection: PostgresConnection?

    init(url: String, worker: Worker, logger: Logger) {
        self.url = url
        self.worker = worker
        var logger = logger
        logger[metadataKey: "starpipe.component"] = "alerts"
        self.logger = logger
    }

    /// Passes every poll interval until `finished` says the slots are done, then a last pass (so a run with
    /// --until-idle sends what it caused).
    func run(finished: () -> Bool) {
        while !finished() {
            pass()
            worker.stop.sleep(worker.options.pollSeconds)
        }
        pass()
    }

    /// Queues what is due, then posts and settles what this worker holds; errors are logged, never fatal.
    func pass() {
        do {
            let database = try self.database()
            _ = try database.query("SELECT starpipe.queue_alerts($1, $2::interval)",
                                   [String(worker.options.alertDLQDepth), "\(worker.options.alertWindowSeconds) seconds"])
            let alerts = try database.query("""
                SELECT alert_key, kind, job_id::text, client, table_name, status, stage, reason FROM starpipe.claim_alerts(20)
                """).rows
            for row in alerts {
                let alert = Alert(key: row[0]!, kind: row[1]!, jobID: Int64(row[2]!)!, client: row[3]!, table: row[4]!,
                                  status: row[5]!, stage: row[6]!, reason: row[7]!)
                var error: String?
                do {
                    try post(alert)
                    logger.info("alert sent", metadata: ["starpipe.job_id": "\(alert.jobID)", "starpipe.client": "\(alert.client)",
                                                         "starpipe.table": "\(alert.table)", "starpipe.alert": "\(alert.kind)"])
                } catch let failure {
                    error = "\(failure)"
                    logger.warning("alert not sent; offered again later", metadata: [
                        "starpipe.job_id": "\(alert.jobID)", "starpipe.alert": "\(alert.kind)", "starpipe.error": "\(failure)",
                    ])
                }
                _ = try database.query("SELECT starpipe.settle_alert($1, $2)", [alert.key, error])
            }
        } catch {
            connection = nil
            logger.warning("alert pass failed", metadata: ["starpipe.error": "\(error)"])
        }
    }

    private func database() throws -> PostgresConnection {
        if let connection, connection.isHealthy { return connection }
        let made = try PostgresConnection(url: worker.options.databaseURL, applicationName: "starpipe-alerts",
                                          settings: PostgresConnection.pipelineSettings)
        connection = made
        return made
    }

    /// Posts `alert`, retrying failures (connection errors, non-2xx replies) with full-jitter backoff.
    private func post(_ alert: Alert) throws {
        let policy = worker.options.retry
        let body = try alert.payload()
        var attempt = 1
        while true {
            do {
                var request = try HTTPClient.Request(url: url, method: .POST)
                request.headers.add(name: "Content-Type", value: "application/json")
                request.body = .bytes(body)
                let response = try HTTPClient.shared.execute(request: request, deadline: .now() + .seconds(10)).wait()
                guard (200..<300).contains(response.status.code) else {
                    throw WebhookRefused(status: response.status.code)
                }
                return
            } catch {
                guard attempt < policy.attempts else { throw error }
                policy.onRetry?("post an alert")
                Thread.sleep(forTimeInterval: Double.random(in: 0...policy.ceiling(after: attempt)))
                attempt += 1
            }
        }
    }
}

/// A webhook that answered with a status other than 2xx.
struct WebhookRefused: Error, CustomStringConvertible {
    let status: UInt
    var description: String { "the webhook answered HTTP \(status)" }
}

/// One row of starpipe.claim_alerts.
struct Alert {
    var key: String
    var kind: String
    var jobID: Int64
    var client: String
    var table: String
    var status: String
    var stage: String
    var reason: String

    /// The line a chat shows.
    var text: String {
        switch kind {
        case "job_dead": "starpipe: job \(jobID) of \(client).\(table) is DEAD (dead-lettered) at stage \(stage): \(reason)"
        case "drift_blocked": "starpipe: job \(jobID) of \(client).\(table) is BLOCKED by schema drift: \(reason)"
        case "dlq_buildup": "starpipe: DLQ build-up for client \(client): \(reason); newest job \(jobID) (\(client).\(table))"
        default: "starpipe: job \(jobID) of \(client).\(table) FAILED at stage \(stage): \(reason)"
        }
    }

    /// Slack-compatible JSON: `text` for the chat, `starpipe` for machines.
    func payload() throws -> [UInt8] {
        let object: [String: Any] = [
            "text": text,
            "starpipe": ["alert": kind, "alert_key": key, "job_id": jobID, "client": client, "table": table,
                         "status": status, "stage": stage, "reason": reason] as [String: Any],
        ]
        return Array(try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]))
    }
}
