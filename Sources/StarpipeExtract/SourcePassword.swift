import Foundation
import StarpipeCore

/// Reads the source's password from a file or from the terminal. Errors name the file, never its content.
public enum SourcePassword {
    /// The first line of `path`, which must be a regular file that neither group nor others may read or write
    /// (mode 0600 or 0400), like `~/.pgpass`.
    public static func read(file path: String) throws -> String {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw StarpipeError(.configuration, "cannot read the password file \(path): \(String(cString: strerror(errno)))")
        }
        guard Int(status.st_mode) & Int(S_IFMT) == Int(S_IFREG) else {
            throw StarpipeError(.configuration, "the password file \(path) is not a regular file")
        }
        guard Int(status.st_mode) & 0o077 == 0 else {
            throw StarpipeError(.configuration, "the password file \(path) may be read by others (mode \(String(Int(status.st_mode) & 0o777, radix: 8))); make it private with chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StarpipeError(.configuration, "cannot read the password file \(path)")
        }
        let line = data.prefix { $0 != UInt8(ascii: "\n") && $0 != UInt8(ascii: "\r") }
        guard !line.isEmpty, let password = String(data: line, encoding: .utf8) else {
            throw StarpipeError(.configuration, "the password file \(path) holds no password on its first line")
        }
        return password
    }

    /// Asks for the password on the controlling terminal (`/dev/tty`, so redirected input and output are left alone),
    /// with echo off while it is typed.
    public static func prompt(_ text: String) throws -> String {
        let terminal = open("/dev/tty", O_RDWR | O_NOCTTY)
        guard terminal >= 0 else {
            throw StarpipeError(.configuration, "--password-prompt needs a terminal; use --password-file or the environment instead")
        }
        defer { close(terminal) }
        var saved = termios()
        guard tcgetattr(terminal, &saved) == 0 else {
            throw StarpipeError(.configuration, "--password-prompt needs a terminal; use --password-file or the environment instead")
        }
        var silent = saved
        silent.c_lflag &= ~tcflag_t(ECHO | ECHONL)
        silent.c_lflag |= tcflag_t(ICANON)
        // Echo goes off before the prompt shows, so nothing typed after the prompt can be echoed.
        guard tcsetattr(terminal, TCSAFLUSH, &silent) == 0 else {
            throw StarpipeError(.configuration, "cannot turn off the terminal's echo for the password prompt")
        }
        _ = text.withCString { write(terminal, $0, strlen($0)) }
        defer {
            _ = tcsetattr(terminal, TCSAFLUSH, &saved)
            _ = write(terminal, "\n", 1)
        }
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while Glibc.read(terminal, &byte, 1) == 1, byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\r") {
            bytes.append(byte)
        }
        guard !bytes.isEmpty, let password = String(bytes: bytes, encoding: .utf8) else {
            throw StarpipeError(.configuration, "no password was entered")
        }
        for index in bytes.indices { bytes[index] = 0 }
        return password
    }
}
