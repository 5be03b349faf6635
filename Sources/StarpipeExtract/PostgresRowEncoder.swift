import StarpipeCore

/// Turns the lines of a Postgres `COPY … TO STDOUT` (text format) into the data file's JSON objects, on the
/// extractor's core rather than the server's, byte for byte as `row_to_json` would write them
/// (``PostgresTable/Form``): `{"id":1,"name":"x"}`, keys in column order, no spaces.
///
/// A line holds the page's keyset values first, then one field per column, separated by tabs: `\N` for NULL, else the
/// type's output text with COPY's backslash escapes. The server sends valid UTF-8 (the connection's
/// client_encoding), so text is copied without a second check.
struct PostgresRowEncoder {
    /// The current row's JSON object, valid until the next ``encode(_:)``.
    var object: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: output, count: count) }

    private let table: String
    private let forms: [PostgresTable.Form]
    /// `{"name":` for the first column, `,"name":` for the others.
    private let keys: [[UInt8]]
    private let keyCount: Int
    /// Bytes a row adds besides its values' text: keys, quotes, `null`s, the `:00` of offsets, braces.
    private let overhead: Int
    private var output: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var count = 0
    /// The last row's keyset fields, still COPY-escaped, one after the other; `keyEnds[i]` ends field `i`.
    private var keyBytes: [UInt8] = []
    private var keyEnds: [Int] = []
    /// 1-based number of the row in the table's file, for errors.
    private var row: Int64 = 0

    /// An encoder for lines of `table` that begin with `keyCount` keyset values.
    init(table: PostgresTable, keyCount: Int) {
        self.table = table.name
        forms = table.forms
        keys = JSONRowWriter.keyPrefixes(table.columns.map(\.name))
        self.keyCount = keyCount
        overhead = keys.reduce(2) { $0 + $1.count + 8 }
        capacity = 1 << 16
        output = .allocate(capacity: capacity)
    }

    /// Frees the output buffer; the encoder is not used afterwards.
    func deallocate() {
        output.deallocate()
    }

    /// Encodes one COPY line (with or without its final newline) into ``object``. Throws when the line does not
    /// have the fields the statement selected, which only a server bug or a changed statement could cause.
    mutating func encode(_ line: UnsafeRawBufferPointer) throws {
        row += 1
        var end = line.count
        if end > 0, line[end - 1] == 0x0A { end -= 1 }
        // Worst case: every byte becomes a six-byte \u00XX escape, plus keys, quotes and the `:00` of offsets.
        let needed = end * 6 + overhead
        if needed > capacity {
            output.deallocate()
            capacity = max(needed, capacity * 2)
            output = .allocate(capacity: capacity)
        }
        count = 0
        keyBytes.removeAll(keepingCapacity: true)
        keyEnds.removeAll(keepingCapacity: true)
        guard let base = line.baseAddress?.assumingMemoryBound(to: UInt8.self) else { throw malformed() }
        var field = 0
        var start = 0
        while field < keyCount + forms.count {
            var stop = start
            while stop < end && base[stop] != 0x09 { stop += 1 }
            guard stop < end || field == keyCount + forms.count - 1 else { throw malformed() }
            let value = UnsafeBufferPointer(start: base + start, count: stop - start)
            if field < keyCount {
                keyBytes.append(contentsOf: value)
                keyEnds.append(keyBytes.count)
            } else {
                let column = field - keyCount
                append(keys[column])
                write(value, as: forms[column])
            }
            field += 1
            start = stop + 1
        }
        guard start == end + 1 else { throw malformed() }
        output[count] = UInt8(ascii: "}")
        count += 1
    }

    /// The last encoded row's keyset values, as their output text (COPY's escapes undone).
    func lastKey() -> [String] {
        var values: [String] = []
        var start = 0
        for stop in keyEnds {
            values.append(String(decoding: Self.unescaped(keyBytes[start..<stop]), as: UTF8.self))
            start = stop
        }
        return values
    }

    private func malformed() -> StarpipeError {
        StarpipeError(.source, "source table \(table) row \(row): the server's COPY line does not have the fields the extractor selected; the run stopped and this table's data file was not committed")
    }

    private mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBufferPointer { append($0) }
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        (output + count).update(from: bytes.baseAddress!, count: bytes.count)
        count += bytes.count
    }

    private mutating func append(_ byte: UInt8) {
        output[count] = byte
        count += 1
    }

    private mutating func write(_ value: UnsafeBufferPointer<UInt8>, as form: PostgresTable.Form) {
        if value.count == 2 && value[0] == UInt8(ascii: "\\") && value[1] == UInt8(ascii: "N") {
            append(Self.null)
            return
        }
        switch form {
        case .boolean:
            append(value.first == UInt8(ascii: "t") ? Self.true : Self.false)
        case .number:
            // Digits, or a minus and digits: a JSON number as it is. NaN and the infinities are strings.
            let digit = { (byte: UInt8) in byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
            if let first = value.first, digit(first) || (first == UInt8(ascii: "-") && value.count > 1 && digit(value[1])) {
                append(value)
            } else {
                quoted(value)
            }
        case .timestamp, .timestampWithTimeZone:
            // `2026-01-02 03:04:05.6+00 BC` becomes `2026-01-02T03:04:05.6+00:00 BC`; `infinity` and `-infinity`
            // have no space and stay as they are. Timestamps' text holds no escapes.
            append(UInt8(ascii: "\""))
            guard let space = value.firstIndex(of: UInt8(ascii: " ")) else {
                append(value)
                append(UInt8(ascii: "\""))
                return
            }
            append(UnsafeBufferPointer(rebasing: value[..<space]))
            append(UInt8(ascii: "T"))
            var rest = value.index(after: space)
            if form == .timestampWithTimeZone,
               let sign = value[rest...].firstIndex(where: { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") }) {
                let zoneEnd = value[sign...].firstIndex(of: UInt8(ascii: " ")) ?? value.endIndex
                append(UnsafeBufferPointer(rebasing: value[rest..<zoneEnd]))
                // An offset of whole hours is printed `+00`; the JSON form always has minutes.
                if !value[sign..<zoneEnd].contains(UInt8(ascii: ":")) { append(Self.minutes) }
                rest = zoneEnd
            }
            append(UnsafeBufferPointer(rebasing: value[rest...]))
            append(UInt8(ascii: "\""))
        case .string:
            quoted(value)
        }
    }

    /// `value` (COPY-escaped) as a JSON string: COPY's escapes undone and JSON's applied in one pass, as
    /// `row_to_json` escapes (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters `\u00XX`).
    private mutating func quoted(_ value: UnsafeBufferPointer<UInt8>) {
        append(UInt8(ascii: "\""))
        var start = 0
        var index = 0
        let length = value.count
        while index < length {
            var byte = value[index]
            guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else {
                index += 1
                continue
            }
            append(UnsafeBufferPointer(rebasing: value[start..<index]))
            if byte == UInt8(ascii: "\\") && index + 1 < length {
                index += 1
                byte = Self.unescape(value[index])
            }
            index += 1
            start = index
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): escape(byte)
            case 0x0A: escape(UInt8(ascii: "n"))
            case 0x0D: escape(UInt8(ascii: "r"))
            case 0x09: escape(UInt8(ascii: "t"))
            case 0x08: escape(UInt8(ascii: "b"))
            case 0x0C: escape(UInt8(ascii: "f"))
            case 0x20...: append(byte)
            default:
                escape(UInt8(ascii: "u"))
                append(Self.twoZeros)
                append(Self.hexDigits[Int(byte >> 4)])
                append(Self.hexDigits[Int(byte & 0x0F)])
            }
        }
        append(UnsafeBufferPointer(rebasing: value[start..<length]))
        append(UInt8(ascii: "\""))
    }

    /// A backslash and `byte`.
    private mutating func escape(_ byte: UInt8) {
        output[count] = UInt8(ascii: "\\")
        output[count + 1] = byte
        count += 2
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
    private static let null: [UInt8] = Array("null".utf8)
    private static let `true`: [UInt8] = Array("true".utf8)
    private static let `false`: [UInt8] = Array("false".utf8)
    /// The minutes of a whole-hour offset.
    private static let minutes: [UInt8] = Array(":00".utf8)
    private static let twoZeros: [UInt8] = Array("00".utf8)

    /// The byte a backslash followed by `escaped` stands for in COPY's text format (as the server writes it:
    /// `\b \f \n \r \t \v`, and a backslash before itself or the delimiter).
    private static func unescape(_ escaped: UInt8) -> UInt8 {
        switch escaped {
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        case UInt8(ascii: "v"): 0x0B
        default: escaped
        }
    }

    private static func unescaped(_ field: ArraySlice<UInt8>) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(field.count)
        var iterator = field.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "\\"), let escaped = iterator.next() {
                bytes.append(unescape(escaped))
            } else {
                bytes.append(byte)
            }
        }
        return bytes
    }
}
