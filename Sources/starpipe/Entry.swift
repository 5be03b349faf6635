import ArgumentParser
import Foundation

/// The executable's entry point. Invoked as `starpipe-extract` (a copy or symbolic link of the release build with that
/// name), it runs `starpipe extract --config starpipe-extract.yml` with the file found next to itself, else in the
/// working directory, so a client only runs it; any arguments given are added after. Under any other name it is
/// the `starpipe` command.
@main
enum Entry {
    /// The name that selects the client's one-file extractor.
    static let standaloneName = "starpipe-extract"
    /// The config file that name looks for.
    static let standaloneConfig = "starpipe-extract.yml"

    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        let invoked = CommandLine.arguments.first ?? ""
        if (invoked as NSString).lastPathComponent == standaloneName {
            let wantsHelp = arguments.first == "help" || arguments.contains { ["-h", "--help"].contains($0) }
            if arguments.contains("--config") || wantsHelp {
                arguments = ["extract"] + arguments
            } else if let config = standaloneConfigPath(invoked: invoked) {
                arguments = ["extract", "--config", config] + arguments
            } else {
                Starpipe.exit(withError: ValidationError(
                    "\(standaloneName) reads \(standaloneConfig) from the directory it is in or the working directory, and found it in neither (looked in \(searchDirectories(invoked: invoked).joined(separator: " and ")))"))
            }
        }
        await Starpipe.main(arguments)
    }

    /// The directories searched, in order: the executable's (as invoked, so a symbolic link's own directory), then
    /// the working directory.
    static func searchDirectories(invoked: String) -> [String] {
        var directories: [String] = []
        if invoked.contains("/") {
            directories.append((invoked as NSString).deletingLastPathComponent)
        } else if let path = ProcessInfo.processInfo.environment["PATH"] {
            // Run through PATH: the directory PATH found it in.
            if let found = path.split(separator: ":").map(String.init).first(where: {
                FileManager.default.isExecutableFile(atPath: $0 + "/" + invoked)
            }) {
                directories.append(found)
            }
        }
        directories.append(FileManager.default.currentDirectoryPath)
        return directories
    }

    /// The first `starpipe-extract.yml` found in ``searchDirectories(invoked:)``.
    static func standaloneConfigPath(invoked: String) -> String? {
        searchDirectories(invoked: invoked).map { ($0.isEmpty ? "." : $0) + "/" + standaloneConfig }
            .first { FileManager.default.fileExists(atPath: $0) }
    }
}
