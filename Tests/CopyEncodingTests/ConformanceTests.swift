import Foundation
import CopyEncoding
import JSONParsing
import Testing

/// Runs `JSONValidator` over nst/JSONTestSuite's `test_parsing` files (MIT, see
/// `Conformance/LICENSE`): every `y_` file must be accepted, every `n_` file rejected, and
/// every `i_` file must match the outcome recorded in `ImplementationDefined.outcomes`.
@Suite("JSONTestSuite conformance")
struct ConformanceTests {
    static func files() throws -> [(name: String, bytes: [UInt8])] {
        let directory = try #require(
            Bundle.module.url(forResource: "Conformance", withExtension: nil)?.appendingPathComponent("test_parsing"))
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") }
            .sorted()
        return try names.map { name in
            (name, Array(try Data(contentsOf: directory.appendingPathComponent(name))))
        }
    }

    @Test func suiteIsPresent() throws {
        let files = try Self.files()
        #expect(files.count == 318)
        #expect(files.contains { $0.name.hasPrefix("y_") })
        #expect(files.contains { $0.name.hasPrefix("n_") })
        #expect(files.contains { $0.name.hasPrefix("i_") })
    }

    @Test func acceptsEveryYFile() throws {
        let rejected = try Self.files().filter { $0.name.hasPrefix("y_") }.compactMap { file in
            TestSupport.validationError(file.bytes).map { "\(file.name): \($0.debugDescription)" }
        }
        #expect(rejected.isEmpty, "wrongly rejected:\n\(rejected.joined(separator: "\n"))")
    }

    @Test func rejectsEveryNFile() throws {
        let accepted = try Self.files().filter { $0.name.hasPrefix("n_") }.filter { file in
            TestSupport.validationError(file.bytes) == nil
        }.map(\.name)
        #expect(accepted.isEmpty, "wrongly accepted:\n\(accepted.joined(separator: "\n"))")
    }

    @Test func implementationDefinedOutcomesAreUnchanged() throws {
        let files = try Self.files().filter { $0.name.hasPrefix("i_") }
        var actual: [String: ImplementationDefined.Outcome] = [:]
        for file in files {
            actual[file.name] = TestSupport.validationError(file.bytes) == nil ? .accepted : .rejected
        }
        let table = ImplementationDefined.outcomes
        let missing = actual.keys.filter { table[$0] == nil }.sorted()
        #expect(missing.isEmpty, "not in ImplementationDefined.outcomes:\n\(missing.map { "\"\($0)\": .\(actual[$0]!)," }.joined(separator: "\n"))")
        let stale = table.keys.filter { actual[$0] == nil }.sorted()
        #expect(stale.isEmpty, "in the table but not in the suite: \(stale)")
        let changed = actual.keys.filter { table[$0] != nil && table[$0] != actual[$0] }.sorted()
        #expect(changed.isEmpty, "outcome changed:\n\(changed.map { "\($0): now \(actual[$0]!)" }.joined(separator: "\n"))")
    }

    /// The n_ files must also be rejected when scanned through the encoder's chunked path:
    /// feeding the validator's tokenizer is not enough, so check the deepest one cleanly fails.
    @Test func hundredThousandOpeningArraysFailCleanly() throws {
        let file = try #require(try Self.files().first { $0.name == "n_structure_100000_opening_arrays.json" })
        #expect(TestSupport.validationError(file.bytes)?.code == .depthExceeded)
    }
}
