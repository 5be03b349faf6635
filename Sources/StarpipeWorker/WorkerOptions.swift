import Foundation

/// How a worker runs.
public struct WorkerOptions: Sendable {
    /// libpq URL of the pipeline database (the one with `CREATE EXTENSION starpipe`).
    public var databaseURL: String
    /// Name recorded on claims and events. Defaults to `<host>:<pid>`.
    public var workerID: String
    /// Lease (visibility timeout) of a claimed job, in seconds. Defaults to 300.
    public var leaseSeconds: Int
    /// Seconds between bucket scans when idle. Defaults to 2.
    public var pollSeconds: Double
    /// Stop when a scan finds nothing to do, instead of polling forever. Defaults to false.
    public var untilIdle: Bool
    /// Bytes read from the bucket per chunk. Defaults to 1 MiB.
    public var chunkSize: Int

    public init(databaseURL: String, workerID: String? = nil, leaseSeconds: Int = 300, pollSeconds: Double = 2,
                untilIdle: Bool = false, chunkSize: Int = 1 << 20) {
        self.databaseURL = databaseURL
        self.workerID = workerID ?? "\(ProcessInfo.processInfo.hostName):\(getpid())"
        self.leaseSeconds = leaseSeconds
        self.pollSeconds = pollSeconds
        self.untilIdle = untilIdle
        self.chunkSize = chunkSize
    }
}
