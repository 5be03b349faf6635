import Foundation
import StarpipePostgres

/// The dashboard's data, `starpipe.dashboard()` as JSON text, and its row lookups (`starpipe.row_origin`, in
/// `DashboardLedger+RowOrigin.swift`), read from the pipeline database on each request over one connection that is
/// reopened when it breaks. Blocking (libpq): call it off the event loop.
public final class DashboardLedger: @unchecked Sendable {
    private let databaseURL: String
    private let lock = NSLock()
    private var connection: PostgresConnection?

    /// Hours of throughput the page plots. Defaults to 24.
    public let hours: Int
    /// Newest jobs whose stage timeline the page shows. Defaults to 50.
    public let recentJobs: Int

    public init(databaseURL: String, hours: Int = 24, recentJobs: Int = 50) {
        self.databaseURL = databaseURL
        self.hours = hours
        self.recentJobs = recentJobs
    }

    /// The document; throws when the database cannot be read.
    public func read() throws -> String {
        try withConnection { connection in
            let json = try connection.query("SELECT starpipe.dashboard($1::integer, $2::integer)::text",
                                            [String(hours), String(recentJobs)]).scalar
            guard let json else { throw DashboardServerError("starpipe.dashboard() returned nothing") }
            return json
        }
    }

    /// Runs `body` on the connection, opened first when there is none or it broke; a connection that broke in
    /// `body` is dropped, so the next call reconnects. One caller at a time.
    func withConnection<T>(_ body: (PostgresConnection) throws -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        do {
            if connection == nil || !(connection?.isHealthy ?? false) {
                connection = try PostgresConnection(url: databaseURL, applicationName: "starpipe-dashboard",
                                                    settings: PostgresConnection.pipelineSettings)
            }
            return try body(connection!)
        } catch {
            if !(connection?.isHealthy ?? false) { connection = nil }
            throw error
        }
    }
}
