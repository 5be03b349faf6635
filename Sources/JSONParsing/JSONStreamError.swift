/// An error raised while tokenizing a JSON stream or turning it into COPY rows.
///
/// The error carries only *positional* and *schema* information: a stable ``code``,
/// the 1-based ``row`` (object) number, the ``column`` name and the 0-based
/// ``byteOffset`` in the whole stream. It never carries bytes of a value, because the
/// data may be patient data (PHI) and error messages end up in logs.
///
/// ``description`` renders as, for example:
/// `row 12, column "BIRTHDATE": invalid UTF-8 at byte 5123`.
public struct JSONStreamError: Error, CustomStringConvertible, CustomDebugStringConvertible, Equatable {
    /// What went wrong; stable across releases, safe to match on and to log.
    public var code: Code
    /// The 1-based row (object) number in which the problem was found, or `nil` when it
    /// happened outside any row (for example between array elements, or after the end).
    public var row: Int?
    /// The name of the column concerned, if known. Column names are schema, not data.
    /// For ``Code/unknownColumn`` this is the offending key, truncated to 64 bytes.
    public var column: String?
    /// The 0-based offset, in the whole stream, of the byte at which the problem was found.
    ///
    /// For errors about a whole value or key (``Code/valueTooLarge``,
    /// ``Code/unknownColumn``, ``Code/duplicateColumn``) it is the offset of the value's or
    /// key's first byte; for ``Code/missingColumn`` the offset of the closing `}`; for
    /// ``Code/unexpectedEnd`` the length of the stream; for escape problems
    /// (``Code/loneSurrogate``, ``Code/nulCharacter``) the offset of the escape's backslash;
    /// for ``Code/invalidUTF8`` the offset of the first byte of the bad sequence.
    public var byteOffset: Int

    /// Creates an error. The module creates these itself; the initializer is public for
    /// callers that want to build expected values (for example in tests).
    public init(code: Code, row: Int? = nil, column: String? = nil, byteOffset: Int) {
        self.code = code
        self.row = row
        self.column = column
        self.byteOffset = byteOffset
    }

    /// A one-line, log-safe message, e.g. `row 12, column "BIRTHDATE": invalid UTF-8 at byte 5123`.
    /// Contains no value bytes from the data.
    public var description: String {
        var text = ""
        if let row {
            text += "row \(row)"
        }
        if let column {
            text += text.isEmpty ? "" : ", "
            text += "column \"\(Self.escaped(column))\""
        }
        if !text.isEmpty {
            text += ": "
        }
        text += "\(code.message) at byte \(byteOffset)"
        return text
    }

    /// A structured rendering for debugging, e.g.
    /// `JSONStreamError(code: invalidUTF8, row: 12, column: "BIRTHDATE", byteOffset: 5123)`.
    public var debugDescription: String {
        let rowText = row.map(String.init) ?? "nil"
        let columnText = column.map { "\"\(Self.escaped($0))\"" } ?? "nil"
        return "JSONStreamError(code: \(code), row: \(rowText), column: \(columnText), byteOffset: \(byteOffset))"
    }

    /// Escapes quotes, backslashes and control characters so a column name cannot break
    /// the single-line message.
    private static func escaped(_ name: String) -> String {
        var result = ""
        for scalar in name.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\r": result += "\\r"
            case "\t": result += "\\t"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7F {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result
    }
}
