import ArgumentParser
import StarpipeMapping
import StarpipePostgres

/// `starpipe mapping`: manage mapping configs.
struct Mapping: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage mapping configs.",
        subcommands: [Apply.self])

    /// `starpipe mapping apply FILE`.
    struct Apply: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate a YAML mapping config against production and store it as the client's next version.")

        @Argument(help: "The mapping YAML file.")
        var file: String

        @OptionGroup var database: DatabaseOptions

        func run() throws {
            let config = try MappingConfig(contentsOf: file)
            let connection = try database.connect()
            let version = try config.apply(to: connection)
            print("mapping applied: version \(version)")
        }
    }
}
