import Foundation
import StarpipeCore

/// The incremental mode's memory between runs: per client, one JSON file `client=NAME.json` in the state directory,
/// holding for each source table only its cursor's column names and its last committed high watermark (never a value
/// from a row).
///
/// A table's watermark advances only after its manifest is in the bucket, and the file is replaced atomically (written
/// to a temporary file, fsynced, renamed over the old one, and the directory fsynced), so a crash at any point leaves
/// either the old state or the new one. A run holds an exclusive lock on `client=NAME.lock` from start to end (waiting
/// up to a second for it), so two runs for one client cannot interleave their watermarks.
final class WatermarkState {
    /// One table's entry.
    struct Entry: Codable, Equatable {
        /// The cursor the watermark was taken for; a different cursor in the config starts the table over.
        var cursor: [String]
        /// The high watermark of the last committed run.
        var highWatermark: String

        enum CodingKeys: String, CodingKey {
            case cursor
            case highWatermark = "high_watermark"
        }
    }

    /// The file's JSON form.
    private struct File: Codable {
        var formatVersion: Int
        var client: String
        var tables: [String: Entry]

        enum CodingKeys: String, CodingKey {
            case formatVersion = "format_version"
            case client, tables
        }
    }

    /// The state file's path.
    let path: String
    private let directory: String
    private let client: String
    private var tables: [String: Entry]
    private let lock: Int32

    /// Opens (creating when missing) the state of `client` in `directory` and takes its lock. Throws when another run
    /// holds the lock, or when the file exists but cannot be read as a state file (naming it; nothing is guessed).
    init(directory: String, client: String) throws {
        self.directory = directory
        self.client = client
        path = directory + "/client=\(client).json"
        var isDirectory: ObjCBool = false
        if !FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw StarpipeError(.configuration, "cannot create the incremental state directory \(directory)")
            }
        } else if !isDirectory.boolValue {
            throw StarpipeError(.configuration, "the incremental state directory \(directory) is not a directory")
        }
        let lockPath = directory + "/client=\(client).lock"
        lock = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard lock >= 0 else {
            throw StarpipeError(.configuration, "cannot open the incremental state lock \(lockPath): \(String(cString: strerror(errno)))")
        }
        // A second's grace: a child process another thread of this process is starting holds a copy of the
        // descriptor (and so the lock) until it execs, even with O_CLOEXEC. A real concurrent run holds it far longer.
        var locked = flock(lock, LOCK_EX | LOCK_NB) == 0
        for _ in 0..<20 where !locked && errno == EWOULDBLOCK {
            usleep(50_000)
            locked = flock(lock, LOCK_EX | LOCK_NB) == 0
        }
        guard locked else {
            close(lock)
            throw StarpipeError(.configuration, "another extraction for client \(client) holds \(lockPath); wait for it to end (two runs must not interleave their watermarks)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            tables = [:]
            return
        }
        guard let file = try? JSONDecoder().decode(File.self, from: data), file.formatVersion == 1, file.client == client,
              file.tables.values.allSatisfy({ Watermark($0.highWatermark) != nil && !$0.cursor.isEmpty }) else {
            close(lock)
            throw StarpipeError(.configuration, "the incremental state file \(path) is not a starpipe state file of client \(client); move it away to start over (the next run then reads every row of each incremental table)")
        }
        tables = file.tables
    }

    deinit {
        close(lock)
    }

    /// The key of a source table: kind, database, schema and table as the manifest's `source` names them. The host is
    /// left out on purpose, so a failover or a new DNS name keeps the watermarks.
    static func key(kind: String, database: String?, schema: String?, table: String) -> String {
        [kind, database ?? "-", schema ?? "-", table].joined(separator: "/")
    }

    /// The last committed high watermark of `key`, or nil when there is none or it was taken for another cursor.
    func highWatermark(of key: String, cursor: [String]) -> Watermark? {
        guard let entry = tables[key], entry.cursor == cursor else { return nil }
        return Watermark(entry.highWatermark)
    }

    /// Records `watermark` as `key`'s high watermark and replaces the file atomically.
    func record(_ watermark: Watermark, of key: String, cursor: [String]) throws {
        var next = tables
        next[key] = Entry(cursor: cursor, highWatermark: watermark.description)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let data = try encoder.encode(File(formatVersion: 1, client: client, tables: next))
        try write(data)
        tables = next
    }

    private func write(_ data: Data) throws {
        let temporary = directory + "/.client=\(client).json.\(getpid()).tmp"
        func fail(_ what: String) -> StarpipeError {
            StarpipeError(.configuration, "cannot \(what) the incremental state file \(path): \(String(cString: strerror(errno)))")
        }
        let file = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard file >= 0 else { throw fail("write") }
        let written = data.withUnsafeBytes { Glibc.write(file, $0.baseAddress, $0.count) }
        guard written == data.count, fsync(file) == 0 else {
            let error = fail("write")
            close(file)
            unlink(temporary)
            throw error
        }
        close(file)
        guard rename(temporary, path) == 0 else {
            let error = fail("replace")
            unlink(temporary)
            throw error
        }
        let parent = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard parent >= 0 else { throw fail("sync the directory of") }
        defer { close(parent) }
        guard fsync(parent) == 0 else { throw fail("sync the directory of") }
    }
}
