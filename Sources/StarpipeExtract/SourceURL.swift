import Foundation
import StarpipeCore

/// The kinds of `--source` URL the extractor reads.
enum SourceURL {
    /// `postgresql://…`, `postgres://…` or a libpq `key=value` string.
    case postgres(String)
    /// `mysql://…` or `mariadb://…`.
    case mariaDB(MariaDBAddress)
    /// `sqlite:PATH` or `sqlite:///ABSOLUTE/PATH`.
    case sqlite(path: String)

    /// Parses a `--source` URL. Errors never repeat the URL, which may hold a password.
    static func parse(_ url: String) throws -> SourceURL {
        let lower = url.lowercased()
        if lower.hasPrefix("sqlite:") {
            var path = String(url.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { throw StarpipeError(.configuration, "a sqlite: source needs a file path (sqlite:///path/to/file.db)") }
            return .sqlite(path: path.removingPercentEncoding ?? path)
        }
        if lower.hasPrefix("mysql://") || lower.hasPrefix("mariadb://") {
            return .mariaDB(try MariaDBAddress(url: url))
        }
        return .postgres(url)
    }
}
