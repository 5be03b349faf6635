import Foundation
import StarpipeCore
import StarpipeMapping
import Testing

/// YAML in, JSON for the extension out; no database involved.
@Suite("Mapping config")
struct MappingConfigTests {
    static func object(_ json: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
    }

    @Test("a YAML mapping becomes JSON with sorted keys")
    func convert() throws {
        let config = try MappingConfig(yaml: """
            client: acme
            tables:
              patients:
                target: production.patients
                key: [id]
                columns:
                  id: {source: Id}
                  active: {source: Active, default: true}
                  weight: {source: Weight, cast: numeric}
            """)
        #expect(config.json.hasPrefix(#"{"client":"acme","tables":{"patients":{"#))
        let object = try Self.object(config.json)
        let patients = try #require((object["tables"] as? [String: Any])?["patients"] as? [String: Any])
        #expect(patients["key"] as? [String] == ["id"])
        let active = try #require((patients["columns"] as? [String: Any])?["active"] as? [String: Any])
        #expect(active["default"] as? Bool == true)
    }

    /// booleans: {true: [...], false: [...]} has boolean keys in YAML; the extension reads them as "true" and "false".
    @Test("coercion rules convert: boolean keys become strings, 0 and 1 stay numbers, formats and sentinels stay strings")
    func coercionRules() throws {
        let config = try MappingConfig(yaml: """
            columns:
              smoker: { from: SMOKER, booleans: { true: [Y, yes, 1, T], false: [N, no, 0, F] } }
              born: { from: BORN, formats: [MM/DD/YYYY, DD.MM.YYYY, YYYYMMDD, ISO], null_values: [N/A, 1900-01-01] }
              gender: { from: G, map: { M: male, F: female, U: null }, unmapped: { default: unknown } }
            """)
        let columns = try #require(try Self.object(config.json)["columns"] as? [String: Any])
        let booleans = try #require((columns["smoker"] as? [String: Any])?["booleans"] as? [String: Any])
        #expect(Set(booleans.keys) == ["true", "false"])
        #expect((booleans["true"] as? [Any])?.count == 4)
        #expect((booleans["false"] as? [Any])?.contains { ($0 as? NSNumber)?.intValue == 0 && !($0 is String) } == true)
        let born = try #require(columns["born"] as? [String: Any])
        #expect(born["formats"] as? [String] == ["MM/DD/YYYY", "DD.MM.YYYY", "YYYYMMDD", "ISO"])
        #expect(born["null_values"] as? [String] == ["N/A", "1900-01-01"])
        let map = try #require((columns["gender"] as? [String: Any])?["map"] as? [String: Any])
        #expect(map["M"] as? String == "male")
        #expect(map["U"] is NSNull)
    }

    /// YAML 1.1 would turn these constants into booleans, timestamps or sexagesimal numbers.
    @Test("plain scalars are typed by YAML 1.2's core schema: NO, yes, on, dates and 1:30 stay strings")
    func coreSchema() throws {
        let config = try MappingConfig(yaml: """
            country: NO
            answer: yes
            switch: off
            day: 2026-01-01
            at: 2026-01-01 10:00:00
            clock: 1:30
            octal: 0755
            zip: 02139
            big: 1_000
            flag: true
            nothing: ~
            count: 12
            ratio: 0.5
            hex: 0x1F
            """)
        let object = try Self.object(config.json)
        #expect(object["country"] as? String == "NO")
        #expect(object["answer"] as? String == "yes")
        #expect(object["switch"] as? String == "off")
        #expect(object["day"] as? String == "2026-01-01")
        #expect(object["at"] as? String == "2026-01-01 10:00:00")
        #expect(object["clock"] as? String == "1:30")
        #expect(object["big"] as? String == "1_000")
        #expect(object["zip"] as? String == "02139")
        #expect(object["octal"] as? String == "0755")
        #expect(object["flag"] as? Bool == true)
        #expect(object["nothing"] is NSNull)
        #expect(object["count"] as? Int == 12)
        #expect(object["ratio"] as? Double == 0.5)
        #expect(object["hex"] as? Int == 31)
    }

    @Test("YAML timestamps and binary become strings")
    func timestampsAndBinary() throws {
        let config = try MappingConfig(yaml: """
            since: 2026-11-01T10:00:00Z
            blob: !!binary aGVsbG8=
            """)
        let object = try Self.object(config.json)
        #expect(object["since"] as? String == "2026-11-01T10:00:00Z")
        #expect(object["blob"] as? String == "aGVsbG8=")
    }

    @Test("invalid YAML and a top level that is not a mapping are configuration errors naming the source",
          arguments: ["a: [1, 2", "- a\n- b", "just text"])
    func refused(yaml: String) {
        do {
            _ = try MappingConfig(yaml: yaml, source: "acme.yaml")
            Issue.record("accepted \(yaml)")
        } catch {
            #expect(error.code == .configuration)
            #expect(error.message.hasPrefix("acme.yaml "))
        }
    }

    @Test("a file is read from disk; a missing one is a configuration error")
    func file() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("starpipe-mapping-\(UUID().uuidString).yaml").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        try "client: acme\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try MappingConfig(contentsOf: path).json == #"{"client":"acme"}"#)
        #expect(throws: StarpipeError(.configuration, "mapping file \(path).missing cannot be read")) {
            try MappingConfig(contentsOf: path + ".missing")
        }
    }
}
