/// Client and table names: they become bucket prefixes and SQL identifiers, so they are strict.
public enum Name {
    /// Longest name in bytes; leaves room for `raw_` and `__<job id>` within Postgres's 63.
    public static let maxBytes = 48

    /// Throws unless `name` matches `^[a-z_][a-z0-9_]*$`, is at most ``maxBytes`` bytes and does not end
    /// in `__<digits>` (the suffix of raw versions and staging tables).
    public static func check(_ name: String, kind: String) throws(StarpipeError) {
        guard isValid(name) else {
            throw StarpipeError(.invalidName,
                "invalid \(kind) name: use lower-case letters, digits and underscores, starting with a letter or underscore, at most \(maxBytes) bytes, not ending in __ and digits")
        }
    }

    /// Whether `name` is a valid client or table name.
    public static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= maxBytes else { return false }
        guard first == UInt8(ascii: "_") || (first >= UInt8(ascii: "a") && first <= UInt8(ascii: "z")) else { return false }
        let allowed = bytes.allSatisfy { byte in
            byte == UInt8(ascii: "_") || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
        }
        return allowed && !endsWithVersionSuffix(bytes)
    }

    /// `…__123`: reserved, so a table can never be mistaken for another table's raw version.
    private static func endsWithVersionSuffix(_ bytes: [UInt8]) -> Bool {
        let digits = bytes.reversed().prefix { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }.count
        guard digits > 0, bytes.count >= digits + 2 else { return false }
        return bytes[bytes.count - digits - 1] == UInt8(ascii: "_") && bytes[bytes.count - digits - 2] == UInt8(ascii: "_")
    }
}

/// Run ids name one extraction run: `^[A-Za-z0-9._-]{1,64}$`.
public enum RunID {
    /// Throws unless `runID` is 1–64 characters of letters, digits, `.`, `_` or `-`.
    public static func check(_ runID: String) throws(StarpipeError) {
        let bytes = Array(runID.utf8)
        let valid = !bytes.isEmpty && bytes.count <= 64 && bytes != Array("..".utf8) && bytes != Array(".".utf8)
            && bytes.allSatisfy { byte in
                (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                    || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-")
            }
        guard valid else {
            throw StarpipeError(.invalidName, "invalid run id: use 1 to 64 letters, digits, '.', '_' or '-'")
        }
    }
}
