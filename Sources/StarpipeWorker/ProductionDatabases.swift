import Foundation
import StarpipeCore

/// The production databases a worker may promote into, by the name mappings give them (`production: NAME`).
///
/// Only names reach the ledger; the URLs, with whatever credentials they carry, stay in the worker's
/// configuration: `--production NAME=URL` or the environment variable `STARPIPE_PRODUCTION_<NAME>`
/// (upper case). A password is better left to `PGPASSWORD`-style files (`~/.pgpass`) than put in the URL.
public struct ProductionDatabases: Sendable {
    private var urls: [String: String]
    private let environment: [String: String]

    /// Parses `NAME=URL` entries; environment variables are consulted for names not given.
    public init(_ entries: [String] = [], environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(StarpipeError)
    {
        var urls: [String: String] = [:]
        for entry in entries {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw StarpipeError(.configuration, "--production takes NAME=URL (the name a mapping's production: gives)")
            }
            let name = String(entry[..<equals])
            guard Name.isValid(name) else {
                throw StarpipeError(.configuration, "--production: \(name) is not a valid production name")
            }
            urls[name] = String(entry[entry.index(after: equals)...])
        }
        self.urls = urls
        self.environment = environment
    }

    /// No `--production` entries: every name from the environment.
    public static var fromEnvironment: ProductionDatabases {
        // No entries cannot fail to parse.
        (try? ProductionDatabases([])) ?? ProductionDatabases(urls: [:])
    }

    private init(urls: [String: String]) {
        self.urls = urls
        self.environment = ProcessInfo.processInfo.environment
    }

    /// The URL of production database `name`, or nil when this worker does not know it.
    public func url(for name: String) -> String? {
        urls[name] ?? environment["STARPIPE_PRODUCTION_" + name.uppercased()]
    }
}
