import Foundation
import StarpipeExtract
import Testing

/// Issue 13: the extractor warns when TLS is off toward a host that is not this machine, for Postgres and MariaDB
/// sources, and stays quiet toward loopback and over TLS. "Not this machine" is real: the servers listen on loopback
/// only, and the extractor reaches them through a ``TCPForwarder`` on this machine's own non-loopback address.
@Suite("Extractor: the warning when TLS is off toward the network", .serialized)
struct TLSWarningTests {
    static let warning = "TLS is off toward a host that is not this machine"

    /// The warnings `--dry-run` of `sourceURL` logs (it opens the source as an extraction does).
    private func warnings(_ sourceURL: String) throws -> [String] {
        let log = CapturedLog()
        _ = try Extractor.describe(ExtractOptions(sourceURL: sourceURL, client: "tls_warning"), logger: log.logger)
        return log.messages(at: .warning)
    }

    @Test("Postgres: sslmode=disable toward this machine's network address warns once; toward 127.0.0.1 it does not")
    func postgres() throws {
        let forwarder = try TCPForwarder(to: Int(TestServer.port)!)
        defer { forwarder.stop() }
        let remote = try warnings("postgres://\(TestServer.user)@\(forwarder.host):\(forwarder.port)/postgres?sslmode=disable")
        #expect(remote.filter { $0.hasPrefix(Self.warning) }.count == 1, "\(remote)")
        #expect(remote.first?.contains("sslmode=verify-full") == true, "the warning says what to add: \(remote)")
        let local = try warnings("postgres://\(TestServer.user)@127.0.0.1:\(TestServer.port)/postgres?sslmode=disable")
        #expect(local.isEmpty, "\(local)")
    }

    @Test("MariaDB: plain toward this machine's network address warns once; verify-full with the CA there, and plain toward 127.0.0.1, do not")
    func mariaDB() throws {
        let database = try TestMariaDB.createDatabase("tls_warning")
        try TestMariaDB.execute(database, "CREATE TABLE visits (id INT PRIMARY KEY, note TEXT)")
        let forwarder = try TCPForwarder(to: Int(TestMariaDB.port)!)
        defer { forwarder.stop() }
        let remote = "mysql://root@\(forwarder.host):\(forwarder.port)/\(database)"
        let plain = try warnings(remote)
        #expect(plain.filter { $0.hasPrefix(Self.warning) }.count == 1, "\(plain)")
        #expect(plain.first?.contains("sslmode=verify-full") == true, "the warning says what to add: \(plain)")
        // The certificate names this machine's addresses, so verify-full holds through the forwarder: TLS is on,
        // checked, toward the same non-loopback host, and nothing is said.
        let verified = try warnings(remote + "?sslmode=verify-full&sslrootcert=\(TestMariaDB.certificateAuthority)")
        #expect(verified.isEmpty, "\(verified)")
        let required = try warnings(remote + "?sslmode=require")
        #expect(required.isEmpty, "\(required)")
        let local = try warnings(TestMariaDB.url(database))
        #expect(local.isEmpty, "\(local)")
    }
}
