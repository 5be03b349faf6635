import Foundation
import StarpipeCore
import StarpipePostgres
import Yams

/// A client's mapping config (YAML), as documented in `examples/synthea/mapping.yaml`.
///
/// The orchestrator only turns YAML into JSON; the extension validates it against the production
/// catalog and stores it as the client's next version (`starpipe.apply_mapping`).
public struct MappingConfig: Sendable {
    /// The config as JSON text.
    public let json: String

    /// Reads and converts a YAML file.
    public init(contentsOf path: String) throws(StarpipeError) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StarpipeError(.configuration, "mapping file \(path) cannot be read")
        }
        try self.init(yaml: String(decoding: data, as: UTF8.self), source: path)
    }

    /// Converts YAML text; `source` names it in errors.
    public init(yaml: String, source: String = "mapping") throws(StarpipeError) {
        let value: Any?
        do {
            value = try Yams.load(yaml: yaml, Self.coreSchema)
        } catch let error as YamlError {
            throw StarpipeError(.configuration, "\(source) is not valid YAML: \(error)")
        } catch {
            throw StarpipeError(.configuration, "\(source) is not valid YAML")
        }
        guard let object = value.map(Self.jsonCompatible) as? [String: Any] else {
            throw StarpipeError(.configuration, "\(source) must be a YAML mapping at the top level")
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            throw StarpipeError(.configuration, "\(source) holds values that JSON cannot represent")
        }
        self.json = String(decoding: data, as: UTF8.self)
    }

    /// Stores the config in the pipeline database; returns the version in force.
    @discardableResult
    public func apply(to connection: PostgresConnection) throws -> Int {
        let version = try connection.query("SELECT starpipe.apply_mapping($1::jsonb)", [json]).scalar
        return Int(version ?? "0") ?? 0
    }

    /// YAML 1.2's core schema, not Yams' default YAML 1.1 one: a plain `NO` (a country code), `yes`, `on`, `off`,
    /// `2026-01-01` or `1:30` stays the string it reads as, instead of becoming false, true, a timestamp or 90.
    /// Only true/false, null/~, decimal, 0o and 0x integers and decimal, .inf and .nan floats are typed; a number
    /// with a leading zero (a zip code such as 02139) stays a string rather than being read as octal.
    static let coreSchema: Resolver = {
        do {
            return Resolver.basic
                .appending(try .init(.null, "^(?:~|null|Null|NULL|)$"))
                .appending(try .init(.bool, "^(?:true|True|TRUE|false|False|FALSE)$"))
                .appending(try .init(.int, "^(?:[-+]?(?:0|[1-9][0-9]*)|0o[0-7]+|0x[0-9a-fA-F]+)$"))
                .appending(try .init(.float, "^(?:[-+]?(?:(?:0|[1-9][0-9]*)(?:\\.[0-9]*)?|\\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?\\.(?:inf|Inf|INF)|\\.(?:nan|NaN|NAN))$"))
                .appending(.merge)
        } catch {
            fatalError("the YAML core schema's patterns are constant and valid: \(error)")
        }
    }()

    /// YAML timestamps and binary become strings; everything else maps to JSON as is.
    private static func jsonCompatible(_ value: Any) -> Any {
        switch value {
        case let date as Date:
            return ISO8601DateFormatter().string(from: date)
        case let data as Data:
            return data.base64EncodedString()
        case let array as [Any]:
            return array.map(jsonCompatible)
        case let dictionary as [String: Any]:
            return dictionary.mapValues(jsonCompatible)
        case let dictionary as [AnyHashable: Any]:
            return Dictionary(uniqueKeysWithValues: dictionary.map { ("\($0.key)", jsonCompatible($0.value)) })
        default:
            return value
        }
    }
}
