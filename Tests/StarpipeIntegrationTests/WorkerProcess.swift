import Foundation

/// The `starpipe worker` executable run as a child process, so tests can kill, pause and signal it.
final class WorkerProcess {
    let process: Process
    private let output = Pipe()

    /// The debug build of the executable (ci/test.sh builds it with the tests).
    static var executable: URL {
        TestServer.repo.appendingPathComponent(".build/debug/starpipe")
    }

    convenience init(database: String, bucket: String, arguments: [String], environment: [String: String] = [:]) throws {
        try self.init(database: database, bucketURL: "file://\(bucket)", arguments: arguments, environment: environment)
    }

    /// A worker on any bucket URL, with `environment` added to the test's (credentials for s3://).
    init(database: String, bucketURL: String, arguments: [String], environment: [String: String] = [:]) throws {
        process = Process.unblocked(Self.executable.path, [
            "worker", "--database", database, "--bucket", bucketURL, "--log-level", "info",
        ] + arguments)
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Runs the starpipe executable with `arguments` to its end; returns its exit status and everything it printed.
    static func cli(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process.unblocked(executable.path, arguments)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    /// Waits up to `timeout` seconds for the process to exit; returns its status, or nil if it is still running.
    func waitForExit(timeout: Double) -> Int32? {
        let end = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < end { Thread.sleep(forTimeInterval: 0.02) }
        return process.isRunning ? nil : process.terminationStatus
    }

    /// Everything the worker logged. A worker still running (a test that timed out waiting for it)
    /// is killed first, so reading its output to the end cannot hang the test run.
    func log() -> String {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        return String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
