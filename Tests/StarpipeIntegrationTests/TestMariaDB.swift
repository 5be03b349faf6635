import Foundation

/// The private MariaDB server that ci/test.sh starts (`start_mariadb`), addressed through MARIADB_HOSTNAME and
/// MARIADB_PORT (defaults: 127.0.0.1, 33069), TLS with the CA in MARIADB_TLS_CA, user root without a password on loopback. Each test makes its own
/// databases with the `mariadb` client.
enum TestMariaDB {
    static var host: String { ProcessInfo.processInfo.environment["MARIADB_HOSTNAME"] ?? "127.0.0.1" }
    static var port: String { ProcessInfo.processInfo.environment["MARIADB_PORT"] ?? "33069" }
    /// The CA that signed the server's certificate (`start_mariadb` makes both), from MARIADB_TLS_CA.
    static var certificateAuthority: String {
        ProcessInfo.processInfo.environment["MARIADB_TLS_CA"]
            ?? TestServer.repo.appendingPathComponent(".starpipe/mariadb-test/tls/ca.pem").path
    }

    /// Creates an empty database with a unique name and returns its name.
    static func createDatabase(_ prefix: String) throws -> String {
        let name = "\(prefix)_\(UInt32.random(in: 0...UInt32.max))"
        try execute(nil, "CREATE DATABASE \(name) CHARACTER SET utf8mb4")
        return name
    }

    /// The extractor's source URL for `database`.
    static func url(_ database: String) -> String {
        "mysql://root@\(host):\(port)/\(database)"
    }

    /// Runs SQL with the `mariadb` client (sql_mode empty, so zero dates can be stored; session time zone UTC).
    static func execute(_ database: String?, _ sql: String) throws {
        try TestServer.run("mariadb", ["--no-defaults", "-h", host, "-P", port, "-u", "root", "--default-character-set=utf8mb4",
                                      "--init-command=SET SESSION sql_mode = '', time_zone = '+00:00'"]
                           + (database.map { [$0] } ?? []) + ["-e", sql])
    }
}
