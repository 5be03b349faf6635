import CProcessHygiene
import Foundation

/// Keeps a source password out of what other users and tools can see of this process: `ps` (the command line),
/// `/proc/PID/environ` and core files.
enum SecretHygiene {
    /// Forbids core dumps, masks the password of every URL (`scheme://user:PASSWORD@host`) and `password=` key
    /// on the command line, and takes `variables` out of the environment after returning their values (the first
    /// one set). Call before connecting; the caller passes the returned password on in memory.
    static func protect(environment variables: [String]) -> String? {
        _ = starpipe_forbid_core_dumps()
        for index in 1..<Int(CommandLine.argc) {
            guard let argument = CommandLine.unsafeArgv[index] else { continue }
            mask(argument)
        }
        var found: String?
        for name in variables {
            guard let value = getenv(name) else { continue }
            if found == nil, value.pointee != 0 { found = String(cString: value) }
            // The value lives in the block /proc/PID/environ shows: overwrite it there, then drop the variable.
            memset(value, 0, strlen(value))
            unsetenv(name)
        }
        return found
    }

    /// Overwrites, in place, a URL's password and the value of a libpq `password=` key with `*`.
    private static func mask(_ argument: UnsafeMutablePointer<CChar>) {
        let count = strlen(argument)
        let bytes = UnsafeMutableBufferPointer(start: UnsafeMutableRawPointer(argument).assumingMemoryBound(to: UInt8.self), count: count)
        let text = Array(bytes)
        func star(_ range: Range<Int>) { for index in range { bytes[index] = UInt8(ascii: "*") } }
        if let scheme = text.indices.first(where: { text[$0...].starts(with: Array("://".utf8)) }) {
            let authorityStart = scheme + 3
            let authorityEnd = text[authorityStart...].firstIndex { $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") } ?? text.count
            if let at = text[authorityStart..<authorityEnd].lastIndex(of: UInt8(ascii: "@")),
               let colon = text[authorityStart..<at].firstIndex(of: UInt8(ascii: ":")) {
                star((colon + 1)..<at)
            }
        }
        let key = Array("password=".utf8)
        var index = 0
        while index + key.count <= text.count {
            if text[index..<(index + key.count)].elementsEqual(key) {
                let start = index + key.count
                let end = text[start...].firstIndex { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "&") } ?? text.count
                star(start..<end)
                index = end
            } else {
                index += 1
            }
        }
    }
}
