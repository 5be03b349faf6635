import Foundation
import StarpipeExtract
import Testing

/// The extractor's config file: what it reads, and the errors that name the file, the key and the line.
@Suite("Extract config file")
struct ExtractConfigTests {
    static let complete = """
        source: postgresql://reader@clinic-db/ehr?sslmode=verify-full&sslrootcert=ca.pem
        password_file: secrets/source.password
        client: acme
        bucket: file:///srv/bucket
        schema: clinic
        tables: [patients, visits]
        page_size: 5000
        retries: 8
        lock_timeout: 2.5
        log_level: notice
        log_format: json
        mode: incremental
        incremental:
          state: /var/lib/starpipe
          lookback: 15m
          skew_margin: 500ms
          null_cursor: include
          tables:
            patients: { cursor: updated_at }
            visits:
              cursor: [updated_at, created_at]
              null_cursor: fail
            legacy: { cursor: modified, time_zone: America/New_York }
        """

    @Test("every key is read; relative paths are the file's directory's; per-table settings override the section's")
    func complete() throws {
        let config = try ExtractConfig(yaml: Self.complete, path: "/etc/starpipe/extract.yml")
        #expect(config.source == "postgresql://reader@clinic-db/ehr?sslmode=verify-full&sslrootcert=ca.pem")
        #expect(config.passwordFile == "/etc/starpipe/secrets/source.password")
        #expect(config.client == "acme" && config.bucket == "file:///srv/bucket" && config.schema == "clinic")
        #expect(config.tables == ["patients", "visits"] && config.pageSize == 5000)
        #expect(config.retries == 8 && config.lockTimeout == 2.5)
        #expect(config.logLevel == "notice" && config.logFormat == "json" && config.incrementalMode == true)
        let incremental = try #require(config.incremental)
        #expect(incremental.enabled && incremental.stateDirectory == "/var/lib/starpipe")
        #expect(incremental.lookbackMicroseconds == 900_000_000 && incremental.skewMarginMicroseconds == 500_000)
        #expect(incremental.cursors["patients"] == TableCursor(columns: ["updated_at"], nullCursor: .include))
        #expect(incremental.cursors["visits"] == TableCursor(columns: ["updated_at", "created_at"], nullCursor: .fail))
        #expect(incremental.cursors["legacy"] == TableCursor(columns: ["modified"], timeZone: "America/New_York", nullCursor: .include))
        let minimal = try ExtractConfig(yaml: "client: acme\nincremental:\n  tables:\n    a: {cursor: u}\n", path: "cfg/x.yml")
        #expect(minimal.incremental?.enabled == false, "without mode: incremental a run is full (and records watermarks)")
        #expect(minimal.incremental?.stateDirectory == "cfg/starpipe-state")
        #expect(minimal.incremental?.lookbackMicroseconds == IncrementalOptions.defaultLookback)
        #expect(minimal.incremental?.cursors["a"]?.nullCursor == .fail)
    }

    @Test("unknown keys, bad values, passwords and broken YAML are refused with the file, key and line", arguments: [
        ("client: acme\nsourc: x\n", "line 2: sourc: unknown key"),
        ("client: acme\nincremental:\n  tables:\n    a: {cursor: u, nul_cursor: include}\n", "line 4: incremental.tables.a.nul_cursor: unknown key"),
        ("client: acme\nincremental:\n  lookback: 5 minutes\n  tables: {a: {cursor: u}}\n", "line 3: incremental.lookback: must be a duration"),
        ("client: acme\nincremental:\n  null_cursor: skip\n  tables: {a: {cursor: u}}\n", "line 3: incremental.null_cursor: must be fail, include or exclude"),
        ("client: acme\npage_size: -3\n", "line 2: page_size: must be a positive"),
        ("client: acme\nretries: many\n", "line 2: retries: must be a whole number"),
        ("client: acme\nlock_timeout: 0\n", "line 2: lock_timeout: must be a positive number"),
        ("client: Acme\n", "line 1: client: must be lower-case"),
        ("client: acme\nsource: postgresql://reader:hunter2@db/ehr\n", "line 2: source: holds a password"),
        ("client: acme\nsource: host=db password=hunter2\n", "line 2: source: holds a password"),
        ("client: acme\npassword: hunter2\n", "line 2: password: a password never goes in this file"),
        ("client: acme\nmode: incremental\n", "line 2: mode: is incremental, but the file has no incremental section"),
        ("client: acme\nincremental:\n  tables:\n    a: {}\n", "line 4: incremental.tables.a.cursor: is missing"),
        ("client: acme\nincremental:\n  tables:\n    a: {cursor: [u, u]}\n", "line 4: incremental.tables.a.cursor: names a column twice"),
        ("client: acme\nincremental:\n  tables:\n    A-b: {cursor: u}\n", "line 4: incremental.tables.A-b: is not a starpipe table name"),
        ("client: acme\nclient: other\n", "line 2: client: is given twice"),
        ("client: acme\ntables: [a, [b]]\n", "line 2: tables: must be a non-empty list"),
        ("client: [acme\n", "line 2: not valid YAML"),
    ])
    func refused(_ yaml: String, _ expected: String) throws {
        #expect {
            try ExtractConfig(yaml: yaml, path: "/tmp/extract.yml")
        } throws: { error in
            let message = "\(error)"
            return message.hasPrefix("/tmp/extract.yml ") && message.contains(expected) && !message.contains("hunter2")
        }
    }
}
