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

/// `starpipe extract` running as a child process while the test watches its output (its log lines at info level).
final class ExtractProcess {
    let process: Process
    private let pipe = Pipe()
    private let collected = Collected()
    private let reader: Thread

    /// Output gathered by the reader thread, to the pipe's end.
    private final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var data = Data()
        private var ended = false
        func append(_ more: UnsafeRawBufferPointer) { lock.withLock { data.append(contentsOf: more) } }
        func end() { lock.withLock { ended = true } }
        var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
        var isEnded: Bool { lock.withLock { ended } }
    }

    init(_ arguments: [String]) throws {
        process = Process.unblocked(WorkerProcess.executable.path, ["extract", "--log-level", "info"] + arguments)
        process.standardOutput = pipe
        process.standardError = pipe
        process.standardInput = FileHandle.nullDevice
        let descriptor = pipe.fileHandleForReading.fileDescriptor
        reader = Thread { [collected] in
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                buffer.withUnsafeBytes { collected.append(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
            }
            collected.end()
        }
        try process.run()
        // The child holds the write end now; closing ours lets the reader see the end when the child exits.
        try pipe.fileHandleForWriting.close()
        reader.start()
    }

    /// Everything printed so far.
    var output: String { collected.text }

    /// Waits up to `timeout` seconds for `text` to appear in the output; false if it did not (or the process ended
    /// without printing it).
    func waitForOutput(_ text: String, timeout: Double) -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if output.contains(text) { return true }
            if collected.isEnded { return output.contains(text) }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return false
    }

    /// Waits up to `timeout` seconds for the end; kills the process if it is still running. Returns the exit status
    /// (nil when it had to be killed) and everything it printed.
    func finish(timeout: Double) -> (status: Int32?, output: String) {
        let end = Date().addingTimeInterval(timeout)
        while !collected.isEnded, Date() < end { Thread.sleep(forTimeInterval: 0.02) }
        var killed = false
        if !collected.isEnded {
            kill(process.processIdentifier, SIGKILL)
            killed = true
        }
        process.waitUntilExit()
        while !collected.isEnded { Thread.sleep(forTimeInterval: 0.01) }
        return (killed ? nil : process.terminationStatus, output)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }
}
