import StarpipeCore

/// Builds one row's JSON object for the sources whose values are encoded on the client (MySQL/MariaDB, SQLite), in the
/// layout Postgres's `row_to_json` writes: `{"id":1,"name":"x"}`, keys in column order, no spaces.
///
/// Strings are checked as they are copied: invalid UTF-8 and NUL characters (which Postgres text cannot hold) are
/// refused with an error naming the table, row and column, never the value.
struct JSONRowWriter {
    /// The row's bytes, reused from row to row.
    private(set) var bytes: [UInt8] = []
    /// `{"name":` for the first column, `,"name":` for the others.
    private let keys: [[UInt8]]
    private let table: String
    private let columnNames: [String]
    /// 1-based number of the row being written, in file order.
    private(set) var row: Int64 = 0

    init(table: String, columns: [String]) {
        self.table = table
        self.columnNames = columns
        keys = Self.keyPrefixes(columns)
    }

    /// What precedes each column's value in a row's object: `{"name":` for the first, `,"name":` for the others.
    static func keyPrefixes(_ columns: [String]) -> [[UInt8]] {
        columns.enumerated().map { index, name in
            var key: [UInt8] = [index == 0 ? UInt8(ascii: "{") : UInt8(ascii: ",")]
            key.append(UInt8(ascii: "\""))
            var name = name
            name.withUTF8 { JSONRowWriter.appendEscaped($0, to: &key) }
            key.append(UInt8(ascii: "\""))
            key.append(UInt8(ascii: ":"))
            return key
        }
    }

    /// Starts the next row.
    mutating func beginRow() {
        bytes.removeAll(keepingCapacity: true)
        row += 1
    }

    /// Writes column `index`'s key.
    mutating func key(_ index: Int) {
        bytes += keys[index]
    }

    /// Ends the row; the object is then in ``bytes``.
    mutating func endRow() {
        bytes.append(UInt8(ascii: "}"))
    }

    mutating func null() { bytes += [0x6E, 0x75, 0x6C, 0x6C] }

    mutating func boolean(_ value: Bool) {
        bytes += value ? [0x74, 0x72, 0x75, 0x65] : [0x66, 0x61, 0x6C, 0x73, 0x65]
    }

    /// Appends ASCII text as it is (a number the source printed, validated by the caller).
    mutating func verbatim(_ text: UnsafeBufferPointer<UInt8>) {
        bytes.append(contentsOf: text)
    }

    mutating func verbatim(_ text: String) {
        bytes.append(contentsOf: text.utf8)
    }

    /// A double as the shortest text that reads back as the same value; infinities as the strings Postgres reads.
    mutating func double(_ value: Double) {
        if value.isNaN { bytes += Array("\"NaN\"".utf8) }
        else if value == .infinity { bytes += Array("\"Infinity\"".utf8) }
        else if value == -.infinity { bytes += Array("\"-Infinity\"".utf8) }
        else { bytes += Array(value.description.utf8) }
    }

    /// A JSON string holding `text`, which must be UTF-8 without NUL characters.
    mutating func string(_ text: UnsafeBufferPointer<UInt8>, column: Int) throws {
        guard let problem = Self.problem(in: text) else {
            bytes.append(UInt8(ascii: "\""))
            Self.appendEscaped(text, to: &bytes)
            bytes.append(UInt8(ascii: "\""))
            return
        }
        throw error(column: column, problem)
    }

    /// A JSON string holding ASCII text the caller made (a date with its `T`, `-infinity`).
    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        bytes += text.utf8
        bytes.append(UInt8(ascii: "\""))
    }

    /// Bytes as base64 (RFC 4648 section 4, padded) in a JSON string: a third of hex's overhead. The manifest marks
    /// the column `"encoding": "base64"` and the worker decodes it into bytea.
    mutating func base64(_ data: UnsafeBufferPointer<UInt8>) {
        let alphabet = Self.base64Alphabet
        bytes.reserveCapacity(bytes.count + (data.count + 2) / 3 * 4 + 2)
        bytes.append(UInt8(ascii: "\""))
        var index = 0
        while index + 3 <= data.count {
            let group = UInt32(data[index]) << 16 | UInt32(data[index + 1]) << 8 | UInt32(data[index + 2])
            bytes += [alphabet[Int(group >> 18)], alphabet[Int(group >> 12 & 0x3F)], alphabet[Int(group >> 6 & 0x3F)],
                      alphabet[Int(group & 0x3F)]]
            index += 3
        }
        switch data.count - index {
        case 1:
            let group = UInt32(data[index]) << 16
            bytes += [alphabet[Int(group >> 18)], alphabet[Int(group >> 12 & 0x3F)], UInt8(ascii: "="), UInt8(ascii: "=")]
        case 2:
            let group = UInt32(data[index]) << 16 | UInt32(data[index + 1]) << 8
            bytes += [alphabet[Int(group >> 18)], alphabet[Int(group >> 12 & 0x3F)], alphabet[Int(group >> 6 & 0x3F)],
                      UInt8(ascii: "=")]
        default:
            break
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private static let base64Alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// An error about the current row's column `column`: table, row and column, never the value.
    func error(column: Int, _ problem: String) -> StarpipeError {
        StarpipeError(.source, "source table \(table) row \(row) column \(columnNames[column]): \(problem); the run stopped and this table's data file was not committed")
    }

    /// Why `text` cannot be a Postgres text value, or nil.
    private static func problem(in text: UnsafeBufferPointer<UInt8>) -> String? {
        var index = 0
        let count = text.count
        while index < count {
            let byte = text[index]
            if byte < 0x80 {
                if byte == 0 { return "the value holds a NUL character, which Postgres text cannot hold" }
                index += 1
                continue
            }
            let length: Int
            let minimum: UInt32
            if byte & 0xE0 == 0xC0 { length = 2; minimum = 0x80 }
            else if byte & 0xF0 == 0xE0 { length = 3; minimum = 0x800 }
            else if byte & 0xF8 == 0xF0 { length = 4; minimum = 0x10000 }
            else { return "the value is not valid UTF-8" }
            guard index + length <= count else { return "the value is not valid UTF-8" }
            var scalar = UInt32(byte) & (0xFF >> UInt32(length + 1))
            for offset in 1..<length {
                let next = text[index + offset]
                guard next & 0xC0 == 0x80 else { return "the value is not valid UTF-8" }
                scalar = scalar << 6 | UInt32(next & 0x3F)
            }
            guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else {
                return "the value is not valid UTF-8"
            }
            index += length
        }
        return nil
    }

    /// Appends `text` escaped for the inside of a JSON string.
    static func appendEscaped(_ text: UnsafeBufferPointer<UInt8>, to bytes: inout [UInt8]) {
        let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
        var start = 0
        for index in 0..<text.count {
            let byte = text[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[start..<index]))
            switch byte {
            case UInt8(ascii: "\""): bytes += [0x5C, 0x22]
            case UInt8(ascii: "\\"): bytes += [0x5C, 0x5C]
            case 0x0A: bytes += [0x5C, UInt8(ascii: "n")]
            case 0x0D: bytes += [0x5C, UInt8(ascii: "r")]
            case 0x09: bytes += [0x5C, UInt8(ascii: "t")]
            case 0x08: bytes += [0x5C, UInt8(ascii: "b")]
            case 0x0C: bytes += [0x5C, UInt8(ascii: "f")]
            default: bytes += [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            }
            start = index + 1
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: text[start..<text.count]))
    }
}
