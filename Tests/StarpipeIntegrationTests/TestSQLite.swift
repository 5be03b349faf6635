import Foundation

/// SQLite files for the extractor, made with the `sqlite3` shell.
enum TestSQLite {
    /// Creates a new SQLite file holding what `sql` makes and returns its path.
    static func createFile(_ sql: String) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-sqlite-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("client.db").path
        try TestServer.run("sqlite3", ["-bail", path, sql])
        return path
    }
}
