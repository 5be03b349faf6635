import Foundation

/// The `starpipe extract` executable (the debug build ci/test.sh makes with the tests), run as a child process.
enum ExtractCommand {
    /// Runs `starpipe extract ARGUMENTS` with `environment` added to the test's, no standard input; returns the exit
    /// status and everything it printed (standard output and error).
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process.unblocked(WorkerProcess.executable.path, ["extract"] + arguments)
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }
}
