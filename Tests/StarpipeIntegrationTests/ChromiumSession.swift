import Foundation
import Glibc

/// One headless Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`: it reads commands
/// on its fd 3 and writes answers and events on its fd 4, each one JSON message ended by a NUL), for tests that act
/// on a page as a person would: choose, type, click, then read the DOM the page's script made of the answer.
/// ``HeadlessChromium`` covers load-and-dump. Waits are bounded; nothing is timed.
final class ChromiumSession {
    private var pid: pid_t = 0
    private let commands: Int32
    private let answers: Int32
    private let profile: URL
    private var buffer: [UInt8] = []
    private var lastID = 0
    private var sessionID: String?
    private var closed = false

    /// Starts the browser with a profile of its own and no page yet.
    init() throws {
        profile = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-chromium-\(UUID().uuidString)")
        // A write to a browser that died must fail here, not kill the test process.
        signal(SIGPIPE, SIG_IGN)
        var toBrowser: [Int32] = [0, 0]
        var fromBrowser: [Int32] = [0, 0]
        guard pipe(&toBrowser) == 0, pipe(&fromBrowser) == 0 else {
            throw TestFailure("cannot make the DevTools pipes: errno \(errno)")
        }
        // Close-on-exec on all four: the child gets its two ends as 3 and 4 only (dup2 clears the flag there).
        for fd in toBrowser + fromBrowser { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // dup2 onto the same number would keep close-on-exec, so the child's 3 and 4 must come from elsewhere.
        let childEnds = [toBrowser[0], fromBrowser[1]].map { fd -> Int32 in
            guard fd == 3 || fd == 4 else { return fd }
            return fcntl(fd, F_DUPFD_CLOEXEC, 10)
        }
        commands = toBrowser[1]
        answers = fromBrowser[0]
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, childEnds[0], 3)
        posix_spawn_file_actions_adddup2(&actions, childEnds[1], 4)
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let executable = try HeadlessChromium.executable()
        let arguments = [executable, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                         "--remote-debugging-pipe", "--user-data-dir=\(profile.path)", "about:blank"]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let spawned = posix_spawn(&pid, executable, &actions, nil, &argv, environ)
        for fd in Set(childEnds + [toBrowser[0], fromBrowser[1]]) { Glibc.close(fd) }
        guard spawned == 0 else {
            closed = true
            Glibc.close(commands)
            Glibc.close(answers)
            throw TestFailure("cannot start \(executable): \(spawned)")
        }
    }

    deinit { close() }

    /// Opens `url` in a new tab and attaches to it; later commands go to that tab.
    func open(_ url: String) throws {
        let target = try send("Target.createTarget", ["url": url], toPage: false)
        guard let targetID = target["targetId"] as? String else { throw TestFailure("no target for \(url): \(target)") }
        let attached = try send("Target.attachToTarget", ["targetId": targetID, "flatten": true], toPage: false)
        guard let session = attached["sessionId"] as? String else { throw TestFailure("cannot attach to \(url): \(attached)") }
        sessionID = session
    }

    /// The value of `expression` evaluated in the page (a promise is awaited), as JSON gives it back.
    @discardableResult
    func evaluate(_ expression: String) throws -> Any? {
        let result = try send("Runtime.evaluate", ["expression": expression, "awaitPromise": true, "returnByValue": true])
        if let exception = result["exceptionDetails"] { throw TestFailure("the page threw: \(exception)") }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Evaluates `condition` until it is true, for at most `timeout` seconds; false if it never is. An error while
    /// the page is still loading counts as not yet.
    func waitUntil(_ condition: String, timeout: TimeInterval = 60) throws -> Bool {
        let end = Date().addingTimeInterval(timeout)
        while Date() < end {
            if (try? evaluate(condition)) as? Bool == true { return true }
            Thread.sleep(forTimeInterval: 0.1)
        }
        return false
    }

    /// Closes the browser and waits for it; removes its profile.
    func close() {
        guard !closed else { return }
        closed = true
        _ = try? send("Browser.close", toPage: false, timeout: 10)
        Glibc.close(commands)
        Glibc.close(answers)
        var status: Int32 = 0
        let end = Date().addingTimeInterval(10)
        while waitpid(pid, &status, WNOHANG) == 0 {
            if Date() >= end {
                kill(pid, SIGKILL)
                waitpid(pid, &status, 0)
                break
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        try? FileManager.default.removeItem(at: profile)
    }

    /// Sends one command and reads messages (skipping events) until its answer, for at most `timeout` seconds.
    private func send(_ method: String, _ parameters: [String: Any] = [:], toPage: Bool = true,
                      timeout: TimeInterval = 60) throws -> [String: Any] {
        lastID += 1
        let id = lastID
        var message: [String: Any] = ["id": id, "method": method, "params": parameters]
        if toPage {
            guard let sessionID else { throw TestFailure("\(method) before a page was opened") }
            message["sessionId"] = sessionID
        }
        var bytes = [UInt8](try JSONSerialization.data(withJSONObject: message))
        bytes.append(0)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(commands, $0.baseAddress, $0.count) }
            guard n > 0 else { throw TestFailure("the browser stopped reading (\(method)): errno \(errno)") }
            written += n
        }
        let end = Date().addingTimeInterval(timeout)
        while true {
            while let nul = buffer.firstIndex(of: 0) {
                let text = Data(buffer[..<nul])
                buffer.removeSubrange(...nul)
                guard let answer = try JSONSerialization.jsonObject(with: text) as? [String: Any], answer["id"] as? Int == id else { continue }
                if let error = answer["error"] { throw TestFailure("\(method) failed: \(error)") }
                return answer["result"] as? [String: Any] ?? [:]
            }
            let remaining = end.timeIntervalSinceNow
            guard remaining > 0 else { throw TestFailure("no answer to \(method) in \(timeout) s") }
            var ready = pollfd(fd: answers, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, Int32(min(remaining, 1) * 1000)) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            let n = Glibc.read(answers, &chunk, chunk.count)
            guard n > 0 else { throw TestFailure("the browser closed its DevTools pipe (\(method))") }
            buffer += chunk[..<n]
        }
    }
}
