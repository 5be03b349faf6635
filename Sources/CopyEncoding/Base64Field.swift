/// Canonical base64 (RFC 4648 section 4) for the columns a manifest marks `"encoding": "base64"`: decoded, and
/// rewritten as bytea's hex input in COPY text (`\\x0aff`, the backslash doubled by COPY's escaping).
enum Base64Field {
    /// Decodes `count` bytes at `text` into `bytes` (replacing what it held); false unless the text is canonical
    /// base64: the standard alphabet, a length that is a multiple of 4, at most two `=` and only at the end, and the
    /// bits the padding leaves over zero, so every byte string has exactly one accepted form. Empty text is no bytes.
    static func decode(_ text: UnsafePointer<UInt8>, count: Int, into bytes: inout [UInt8]) -> Bool {
        bytes.removeAll(keepingCapacity: true)
        guard count % 4 == 0 else { return false }
        bytes.reserveCapacity(count / 4 * 3)
        var i = 0
        while i < count {
            let last = i + 4 == count
            let a = value[Int(text[i])], b = value[Int(text[i + 1])]
            var c = value[Int(text[i + 2])], d = value[Int(text[i + 3])]
            guard a < 64, b < 64 else { return false }
            var kept = 3
            if last && text[i + 3] == 0x3D { // =
                if text[i + 2] == 0x3D {
                    guard b & 0x0F == 0 else { return false }
                    (c, kept) = (0, 1)
                } else {
                    guard c < 64, c & 0x03 == 0 else { return false }
                    kept = 2
                }
                d = 0
            } else {
                guard c < 64, d < 64 else { return false }
            }
            bytes.append(a << 2 | b >> 4)
            if kept > 1 { bytes.append(b << 4 | c >> 2) }
            if kept > 2 { bytes.append(c << 6 | d) }
            i += 4
        }
        return true
    }

    /// The length of ``appendHex(_:to:)``'s output for `byteCount` bytes.
    static func hexLength(_ byteCount: Int) -> Int { 3 + 2 * byteCount }

    /// Appends `\\x` and two lower-case hex digits per byte.
    static func appendHex(_ bytes: [UInt8], to buffer: inout [UInt8]) {
        buffer.append(contentsOf: [0x5C, 0x5C, 0x78])
        for byte in bytes {
            buffer.append(digits[Int(byte >> 4)])
            buffer.append(digits[Int(byte & 0x0F)])
        }
    }

    /// Each byte's 6-bit value in the standard alphabet; 0xFF for any other byte (`=` included).
    private static let value: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8.enumerated() {
            table[Int(byte)] = UInt8(index)
        }
        return table
    }()

    private static let digits = Array("0123456789abcdef".utf8)
}
