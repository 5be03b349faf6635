import Foundation

/// Debian's `chromium`, headless (`--headless=new`; `--no-sandbox` since CI runs as root), for tests that look at a
/// page as a browser renders it. `STARPIPE_CHROMIUM` names another binary.
enum HeadlessChromium {
    /// The binary: `STARPIPE_CHROMIUM`, else the first of chromium and chromium-browser on PATH or in /usr/bin.
    static func executable() throws -> String {
        if let path = ProcessInfo.processInfo.environment["STARPIPE_CHROMIUM"] { return path }
        let directories = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin"]
        for name in ["chromium", "chromium-browser"] {
            for directory in directories where FileManager.default.isExecutableFile(atPath: directory + "/" + name) {
                return directory + "/" + name
            }
        }
        throw TestFailure("chromium not found (ci/lib.sh installs Debian's chromium; or set STARPIPE_CHROMIUM)")
    }

    /// The DOM of `url` after its scripts ran at load, serialized.
    static func dumpDOM(_ url: String) throws -> String {
        try run(["--dump-dom", url])
    }

    /// Saves a PNG of `url` at `width`×`height` to `path`; returns what chromium printed.
    @discardableResult
    static func screenshot(_ url: String, to path: String, width: Int = 1400, height: Int = 1000) throws -> String {
        try run(["--screenshot=\(path)", "--window-size=\(width),\(height)", "--hide-scrollbars", url])
    }

    /// Runs chromium with a profile of its own, to its end (stopped after `timeout` seconds); returns its stdout.
    private static func run(_ arguments: [String], timeout: Double = 120) throws -> String {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable())
        process.arguments = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                             "--user-data-dir=\(profile.path)"] + arguments
        // Output goes to a file, not a pipe: a helper process chromium leaves behind could hold a pipe open.
        let outputFile = profile.appendingPathExtension("out")
        defer { try? FileManager.default.removeItem(at: outputFile) }
        FileManager.default.createFile(atPath: outputFile.path, contents: nil)
        let output = try FileHandle(forWritingTo: outputFile)
        defer { try? output.close() }
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let end = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < end { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            throw TestFailure("chromium \(arguments) did not finish in \(timeout) s")
        }
        let text = String(decoding: try Data(contentsOf: outputFile), as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw TestFailure("chromium \(arguments) exited with \(process.terminationStatus): \(text.prefix(2000))")
        }
        return text
    }
}
