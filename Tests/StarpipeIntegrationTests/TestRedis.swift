import Foundation
import StarpipeRedis

/// A private redis-server for one test, on a random loopback port, started and stopped by the test.
final class TestRedis {
    private(set) var port: Int
    private var process: Process?

    init() throws {
        // Tests run in parallel: a port another test's server holds is skipped, not shared.
        port = Int.random(in: 20_000...29_999)
        for _ in 0..<10 {
            do {
                try start()
                return
            } catch is PortTaken {
                port = Int.random(in: 20_000...29_999)
            }
        }
        throw TestFailure("no free port for redis-server after 10 tries")
    }

    private struct PortTaken: Error {}

    deinit { stop() }

    var url: String { "redis://127.0.0.1:\(port)" }

    /// Starts the server empty (no persistence) and waits until it answers.
    func start() throws {
        let process = Process.unblocked("/usr/bin/redis-server", [
            "--port", "\(port)", "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", FileManager.default.temporaryDirectory.path,
        ])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        for _ in 0..<100 {
            // The server answering must be this one: a port held by another server answers too.
            if let connection = try? RedisConnection(url: url, timeout: 0.5),
               case .string(let info)? = try? connection.command(["INFO", "server"]) {
                if info.contains("process_id:\(process.processIdentifier)\r") { return }
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                self.process = nil
                throw PortTaken()
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw TestFailure("redis-server did not start on port \(port)")
    }

    /// Whether `key` exists now.
    func exists(_ key: String) -> Bool {
        guard let connection = try? RedisConnection(url: url, timeout: 0.5),
              let reply = try? connection.command(["EXISTS", key]) else { return false }
        return reply == .integer(1)
    }

    /// Kills the server (its data is gone with it).
    func stop() {
        guard let process, process.isRunning else { return }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        self.process = nil
    }
}
