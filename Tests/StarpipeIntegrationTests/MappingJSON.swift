import StarpipeMapping

/// Mapping YAML edited by a test, as the JSON the extension stores.
enum MappingJSON {
    static func from(_ yaml: String) throws -> String {
        try MappingConfig(yaml: yaml, source: "test mapping").json
    }
}
