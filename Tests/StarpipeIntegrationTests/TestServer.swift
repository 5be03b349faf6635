import Foundation
import StarpipePostgres

/// The live Postgres that ci/test.sh starts, addressed through POSTGRES_HOSTNAME, POSTGRES_PORT and
/// POSTGRES_USER (defaults: 127.0.0.1, 54329, postgres). Each test makes its own databases.
enum TestServer {
    static var host: String { ProcessInfo.processInfo.environment["POSTGRES_HOSTNAME"] ?? "127.0.0.1" }
    static var port: String { ProcessInfo.processInfo.environment["POSTGRES_PORT"] ?? "54329" }
    static var user: String { ProcessInfo.processInfo.environment["POSTGRES_USER"] ?? "postgres" }

    /// The repository root (examples/ and the extension live there).
    static var repo: URL {
        if let path = ProcessInfo.processInfo.environment["STARPIPE_REPO"] { return URL(fileURLWithPath: path) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    static func url(database: String) -> String {
        "postgresql://\(user)@\(host):\(port)/\(database)"
    }

    /// Creates an empty database with a unique name and returns its URL.
    static func createDatabase(_ prefix: String) throws -> String {
        let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try PostgresConnection(url: url(database: "postgres"))
        try admin.execute("CREATE DATABASE \(name)")
        return url(database: name)
    }

    /// Runs a program (psql, the loader script) and throws with its output when it fails.
    static func run(_ executable: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [executable] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TestFailure("\(executable) failed: \(String(decoding: text, as: UTF8.self))")
        }
    }
}

extension Process {
    /// A process for `executable` whose signals are unblocked. Foundation starts children with the
    /// parent thread's signal mask, and test threads block most signals, so a plain child would
    /// never see SIGTERM. perl (always present on Debian) clears the mask and execs the program.
    static func unblocked(_ executable: String, _ arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/perl")
        process.arguments = ["-e", "use POSIX; sigprocmask(SIG_SETMASK, POSIX::SigSet->new); exec @ARGV or die", "--",
                             executable] + arguments
        return process
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
