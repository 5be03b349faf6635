import Foundation
import StarpipeCore

/// Where a MySQL/MariaDB source is: `mysql://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=…&sslrootcert=…]`
/// (`mariadb://` alike). The password may instead come from `MYSQL_PWD`. Its description never shows the password.
struct MariaDBAddress: CustomStringConvertible {
    /// How the connection uses TLS.
    enum TLSMode: String {
        /// Plain TCP. The extractor warns when the host is not a loopback address.
        case disable
        /// TLS, the server's certificate not checked.
        case require
        /// TLS, the certificate checked against `sslrootcert` (or the system's CAs) and the host name.
        case verifyFull = "verify-full"
    }

    var user: String
    var password: String?
    /// Whether the password came from the URL (which wins over every other source).
    var passwordInURL: Bool
    var host: String
    var port: UInt32
    var database: String
    var tls: TLSMode
    /// PEM file of the certificate authorities that `verify-full` trusts.
    var rootCertificate: String?

    /// Parses the URL; `environment` supplies `MYSQL_PWD` when the URL holds no password.
    init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        // Errors never repeat the URL: it may hold a password.
        guard let components = URLComponents(string: url), let host = components.percentEncodedHost, !host.isEmpty else {
            throw StarpipeError(.configuration, "a mysql:// source URL needs a host: mysql://USER@HOST[:PORT]/DATABASE")
        }
        let database = String(components.path.drop { $0 == "/" })
        guard !database.isEmpty, !database.contains("/") else {
            throw StarpipeError(.configuration, "a mysql:// source URL needs a database: mysql://USER@HOST[:PORT]/DATABASE")
        }
        self.host = host.removingPercentEncoding ?? host
        self.port = UInt32(components.port ?? 3306)
        self.database = database
        self.user = components.user ?? environment["USER"] ?? "root"
        self.passwordInURL = components.password != nil
        self.password = components.password ?? environment["MYSQL_PWD"]
        var tls = TLSMode.disable
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                    throw StarpipeError(.configuration, "sslmode must be disable, require or verify-full")
                }
                tls = mode
            case "sslrootcert": rootCertificate = item.value
            default:
                throw StarpipeError(.configuration, "unknown mysql:// source URL parameter \(item.name) (known: sslmode, sslrootcert)")
            }
        }
        self.tls = tls
    }

    /// Whether the host is this machine, where plain TCP exposes nothing to the network.
    var isLoopback: Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    var description: String { "mysql://\(user)@\(host):\(port)/\(database)" }
}
