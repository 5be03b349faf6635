import Foundation
import StarpipePostgres
import Testing

/// The source password, as the `starpipe extract` executable takes it: from the URL, the environment, a private file
/// or a prompt without echo. A canary password must authenticate and then appear nowhere: not in output or errors,
/// not in the bucket, not in `ps` or /proc/PID/environ, and the process may not dump core.
@Suite("Source credentials")
struct CredentialsTests {
    /// A MariaDB database with one table and a user whose password is the canary.
    struct Account {
        let database: String, user: String, canary: String
        var url: String { "mysql://\(user)@\(TestMariaDB.host):\(TestMariaDB.port)/\(database)" }

        static func make() throws -> Account {
            let database = try TestMariaDB.createDatabase("sp_cred")
            let suffix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
            let account = Account(database: database, user: "sp_canary_\(suffix)", canary: "Canary-\(suffix)-pw")
            try TestMariaDB.execute(database, """
                CREATE TABLE patients (id INT PRIMARY KEY, name TEXT); INSERT INTO patients VALUES (1, 'a'), (2, 'b');
                CREATE USER '\(account.user)'@'127.0.0.1' IDENTIFIED BY '\(account.canary)';
                GRANT SELECT ON \(database).* TO '\(account.user)'@'127.0.0.1';
                """)
            return account
        }
    }

    /// Runs `starpipe extract` into a new bucket; returns its exit status, its output and the bucket's directory.
    static func extract(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String, bucket: String) {
        let bucket = SourceLanding.temporaryDirectory()
        let run = try ExtractCommand.run(["--client", "cred", "--bucket", "file://\(bucket)", "--log-level", "trace"] + arguments,
                                         environment: environment)
        return (run.status, run.output, bucket)
    }

    /// Every byte the bucket holds, as text.
    static func bucketText(_ directory: String) -> String {
        let files = FileManager.default.enumerator(atPath: directory)?.compactMap { $0 as? String } ?? []
        return files.compactMap { FileManager.default.contents(atPath: directory + "/" + $0) }
            .map { String(decoding: $0, as: UTF8.self) }.joined(separator: "\n")
    }

    @Test("a canary password from MYSQL_PWD, PGPASSWORD and a 0600 file authenticates, and appears in no output, error or bucket file")
    func environmentAndFile() throws {
        let account = try Account.make()
        let fromEnvironment = try Self.extract(["--source", account.url, "--run-id", "env"], environment: ["MYSQL_PWD": account.canary])
        #expect(fromEnvironment.status == 0, "\(fromEnvironment.output)")
        #expect(Self.bucketText(fromEnvironment.bucket).contains("\"row_count\" : 2"))
        // The Postgres test server trusts loopback, so this only proves the password goes nowhere.
        let postgresURL = try TestServer.createDatabase("sp_cred")
        try PostgresConnection(url: postgresURL).execute("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
        let postgres = try Self.extract(["--source", postgresURL, "--run-id", "pg"], environment: ["PGPASSWORD": account.canary])
        #expect(postgres.status == 0, "\(postgres.output)")
        let wrong = try Self.extract(["--source", account.url, "--run-id", "wrong"], environment: ["MYSQL_PWD": account.canary + "x"])
        #expect(wrong.status != 0 && wrong.output.contains("Access denied"), "\(wrong.output)")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-password-\(UInt32.random(in: 0...UInt32.max))").path
        try (account.canary + "\n").write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, 0o644)
        let open = try Self.extract(["--source", account.url, "--password-file", file, "--run-id", "open"])
        #expect(open.status != 0 && open.output.contains("chmod 600"), "\(open.output)")
        chmod(file, 0o600)
        let fromFile = try Self.extract(["--source", account.url, "--password-file", file, "--run-id", "file"])
        #expect(fromFile.status == 0, "\(fromFile.output)")

        for run in [fromEnvironment, postgres, wrong, open, fromFile] {
            #expect(!run.output.contains(account.canary), "the password is never printed")
            #expect(!Self.bucketText(run.bucket).contains(account.canary), "the password is never written")
        }
    }

    @Test("sslmode=require encrypts; verify-full connects with the server's CA and refuses a certificate another CA signed")
    func tls() throws {
        let account = try Account.make()
        let require = try Self.extract(["--source", account.url + "?sslmode=require", "--run-id", "require"],
                                       environment: ["MYSQL_PWD": account.canary])
        #expect(require.status == 0, "\(require.output)")
        let verified = try Self.extract(["--source", account.url + "?sslmode=verify-full&sslrootcert=\(TestMariaDB.certificateAuthority)",
                                         "--run-id", "verified"], environment: ["MYSQL_PWD": account.canary])
        #expect(verified.status == 0, "\(verified.output)")
        // A CA of our own, which did not sign the server's certificate.
        let directory = SourceLanding.temporaryDirectory()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try TestServer.run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other CA",
                                       "-keyout", directory + "/other.key", "-out", directory + "/other.pem"])
        let refused = try Self.extract(["--source", account.url + "?sslmode=verify-full&sslrootcert=\(directory)/other.pem",
                                        "--run-id", "refused"], environment: ["MYSQL_PWD": account.canary])
        #expect(refused.status != 0 && refused.output.contains("cannot connect"), "\(refused.output)")
        #expect(!Self.bucketText(refused.bucket).contains("manifest"), "nothing is written")
        for run in [require, verified, refused] { #expect(!run.output.contains(account.canary)) }
    }

    @Test("the prompt reads the password without echo under a pty")
    func prompt() throws {
        let account = try Account.make()
        let bucket = SourceLanding.temporaryDirectory()
        let command = [WorkerProcess.executable.path, "extract", "--client", "cred", "--bucket", "file://\(bucket)", "--source",
                       account.url, "--password-prompt", "--run-id", "tty"].joined(separator: " ")
        // script(1) runs the extractor on a new pty and copies what the pty shows to its standard output.
        let process = Process.unblocked("/usr/bin/script", ["-q", "-e", "-c", command, "/dev/null"])
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        try process.run()
        var shown = Data()
        while !String(decoding: shown, as: UTF8.self).contains("Password for the source database:") {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            shown += chunk
        }
        input.fileHandleForWriting.write(Data((account.canary + "\n").utf8))
        shown += output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: shown, as: UTF8.self)
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("Password for the source database:") && text.contains("extracted 1 tables"), "\(text)")
        #expect(!text.contains(account.canary), "the terminal never shows the password")
        #expect(!Self.bucketText(bucket).contains(account.canary))
    }

    @Test("while the extractor runs, ps and /proc/PID/environ show no password, and it cannot dump core")
    func processListing() throws {
        let canary = "Canary-\(UInt32.random(in: 0...UInt32.max))-pw"
        // A server that accepts and never answers holds the extractor in its connect, after it has hidden the password.
        let listener = try SilentListener()
        let process = Process.unblocked(WorkerProcess.executable.path, [
            "extract", "--client", "cred", "--bucket", "file://\(SourceLanding.temporaryDirectory())",
            "--source", "mysql://someone:\(canary)@127.0.0.1:\(listener.port)/db",
        ])
        process.environment = ProcessInfo.processInfo.environment.merging(["PGPASSWORD": canary + "-env"]) { $1 }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        #expect(listener.waitForConnection(), "the extractor connects")
        let pid = process.processIdentifier
        let listing = Pipe()
        let ps = Process()
        ps.executableURL = URL(fileURLWithPath: "/bin/ps")
        ps.arguments = ["-ww", "-eo", "pid,args"]
        ps.standardOutput = listing
        try ps.run()
        let table = String(decoding: listing.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ps.waitUntilExit()
        let line = table.split(separator: "\n").first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("\(pid) ") }
        #expect(line?.contains("mysql://someone:") == true, "the extractor is listed: \(String(describing: line))")
        #expect(!table.contains(canary), "ps shows no password")
        let environ = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ"))) ?? Data()
        #expect(!String(decoding: environ, as: UTF8.self).contains(canary), "the environment holds no password")
        let limits = (try? String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)) ?? ""
        #expect(limits.split(separator: "\n").contains { $0.hasPrefix("Max core file size") && $0.contains(" 0 ") }, "\(limits)")
    }
}

/// A TCP listener on loopback that accepts one connection and never writes to it.
final class SilentListener: @unchecked Sendable {
    let port: Int
    private let socketDescriptor: Int32
    private var connection: Int32 = -1
    private let accepted = DispatchSemaphore(value: 0)

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(descriptor, pointer, length) == 0 && listen(descriptor, 1) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else { close(descriptor); throw TestFailure("cannot listen on loopback") }
        socketDescriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
        Thread.detachNewThread { [self] in
            connection = accept(descriptor, nil, nil)
            accepted.signal()
        }
    }

    /// Waits (up to a minute) for the connection; true when it came.
    func waitForConnection() -> Bool {
        accepted.wait(timeout: .now() + 60) == .success
    }

    deinit {
        if connection >= 0 { close(connection) }
        close(socketDescriptor)
    }
}
