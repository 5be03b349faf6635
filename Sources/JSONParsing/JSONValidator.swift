/// Checks that bytes are exactly one JSON document (RFC 8259), with the same tokenizer
/// that ``CopyRowEncoder`` uses.
///
/// Any top-level value is allowed (object, array, string, number, literal), surrounded by
/// optional whitespace. Implementation-defined choices, shared with the encoder:
/// - strings must be well-formed UTF-8 and surrogate escapes must pair up
///   (``JSONStreamError/Code/invalidUTF8``, ``JSONStreamError/Code/loneSurrogate``);
/// - `\u0000` is accepted here (it is valid JSON); only the encoder rejects it;
/// - numbers of any size or precision are accepted (`1e99999`);
/// - a UTF-8 byte order mark is rejected (``JSONStreamError/Code/syntax``);
/// - nesting deeper than `maxDepth` is ``JSONStreamError/Code/depthExceeded``;
/// - non-whitespace after the value is ``JSONStreamError/Code/trailingData``; empty input
///   is ``JSONStreamError/Code/unexpectedEnd``.
public enum JSONValidator {
    /// Validates that `bytes` is exactly one JSON document; throws the first problem found.
    ///
    /// - Parameters:
    ///   - bytes: the whole document.
    ///   - maxDepth: the maximum nesting depth of objects/arrays. Defaults to 512.
    public static func validate(_ bytes: UnsafeRawBufferPointer, maxDepth: Int = 512) throws(JSONStreamError) {
        let count = bytes.count
        guard count > 0, let raw = bytes.baseAddress else {
            throw JSONStreamError(code: .unexpectedEnd, byteOffset: 0)
        }
        let p = raw.assumingMemoryBound(to: UInt8.self)
        var tokenizer = JSONTokenizer(maxDepth: maxDepth, maxValueBytes: Int.max, rejectNUL: false, keyCapacity: 0)
        tokenizer.beginValue(at: 0, sink: .none)
        var i = 0
        if try !tokenizer.scan(p, &i, count) {
            try tokenizer.finishAtEnd(offset: count)
        }
        while i < count {
            switch p[i] {
            case 0x20, 0x0A, 0x0D, 0x09:
                i += 1
            default:
                throw JSONStreamError(code: .trailingData, byteOffset: i)
            }
        }
    }
}
