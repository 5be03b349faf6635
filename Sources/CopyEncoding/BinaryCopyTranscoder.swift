/// Rewrites COPY text rows (as ``CopyRowEncoder`` writes them, with the row number as the last
/// field) into PostgreSQL's binary COPY format, which the server ingests with much less work.
///
/// It accepts only canonical input for each type (ISO dates and timestamps with an explicit
/// offset, plain decimal numbers, canonical UUIDs, `true`/`false`, …). Anything else, even a
/// value Postgres would accept, throws ``BinaryCopyTranscoder/NotCanonical``: the caller then
/// loads the file again in text format, where Postgres's own input functions decide. The binary
/// path is therefore an optimisation that never changes what lands in the table.
public struct BinaryCopyTranscoder {
    /// A value the binary path does not encode; the load must be redone in text format.
    public struct NotCanonical: Error, CustomStringConvertible {
        /// 1-based source row.
        public var row: Int
        /// 0-based column index.
        public var column: Int
        public var description: String { "row \(row), column \(column + 1): value not in canonical form for binary COPY" }
    }

    private let types: [BinaryCopyType]
    private var scratch: [UInt8] = []
    private var groups: [Int16] = []

    /// `types`: the column types in COPY column order (the row number column is added as int8).
    public init(types: [BinaryCopyType]) {
        self.types = types
        scratch.reserveCapacity(1 << 16)
        groups.reserveCapacity(64)
    }

    /// The 19-byte binary COPY header.
    public static let header: [UInt8] = Array("PGCOPY\n".utf8) + [0xFF, 0x0D, 0x0A, 0x00] + [0, 0, 0, 0] + [0, 0, 0, 0]
    /// The binary COPY trailer (a field count of -1).
    public static let trailer: [UInt8] = [0xFF, 0xFF]

    /// Appends the binary form of every complete text row in `text` to `output`.
    public mutating func transcode(_ text: [UInt8], into output: inout [UInt8]) throws(NotCanonical) {
        try text.withUnsafeBufferPointer { (buffer) throws(NotCanonical) in
            guard let base = buffer.baseAddress else { return }
            var start = 0
            let count = buffer.count
            while start < count {
                var end = start
                while end < count && base[end] != 0x0A { end += 1 }
                try row(UnsafeBufferPointer(start: base + start, count: end - start), into: &output)
                start = end + 1
            }
        }
    }

    private mutating func row(_ line: UnsafeBufferPointer<UInt8>, into output: inout [UInt8]) throws(NotCanonical) {
        // The row number is the last field; find it first so errors can name the row.
        var lastTab = line.count - 1
        while lastTab >= 0 && line[lastTab] != 0x09 { lastTab -= 1 }
        var rowNumber = 0
        for index in (lastTab + 1)..<line.count { rowNumber = rowNumber * 10 + Int(line[index] &- 0x30) }
        CanonicalText.appendInt16(Int16(types.count + 1), to: &output)
        var fieldStart = 0
        var column = 0
        var index = 0
        while index <= lastTab {
            if line[index] == 0x09 {
                guard column < types.count else { throw NotCanonical(row: rowNumber, column: column) }
                try field(UnsafeBufferPointer(rebasing: line[fieldStart..<index]), type: types[column],
                          row: rowNumber, column: column, into: &output)
                column += 1
                fieldStart = index + 1
            }
            index += 1
        }
        guard column == types.count else { throw NotCanonical(row: rowNumber, column: column) }
        CanonicalText.appendInt32(8, to: &output)
        CanonicalText.appendInt64(Int64(rowNumber), to: &output)
    }

    private mutating func field(_ raw: UnsafeBufferPointer<UInt8>, type: BinaryCopyType, row: Int, column: Int,
                                into output: inout [UInt8]) throws(NotCanonical) {
        if raw.count == 2 && raw[0] == 0x5C && raw[1] == 0x4E {  // \N
            CanonicalText.appendInt32(-1, to: &output)
            return
        }
        // Only text-like values can hold escapes; most fields are used in place.
        if raw.contains(0x5C) {
            unescape(raw)
            let encoded = scratch.withUnsafeBufferPointer { value in
                encode(value, type: type, into: &output)
            }
            guard encoded else { throw NotCanonical(row: row, column: column) }
        } else {
            guard encode(raw, type: type, into: &output) else { throw NotCanonical(row: row, column: column) }
        }
    }

    /// Appends the length word and binary value; false when the text is not canonical for the type.
    @inline(__always)
    private mutating func encode(_ value: UnsafeBufferPointer<UInt8>, type: BinaryCopyType, into output: inout [UInt8]) -> Bool {
        switch type {
        case .text, .json:
            CanonicalText.appendInt32(Int32(value.count), to: &output)
            output.append(contentsOf: value)
        case .jsonb:
            CanonicalText.appendInt32(Int32(value.count + 1), to: &output)
            output.append(1)
            output.append(contentsOf: value)
        case .boolean:
            let truth: UInt8
            if CanonicalText.equals(value, "true") || CanonicalText.equals(value, "t") {
                truth = 1
            } else if CanonicalText.equals(value, "false") || CanonicalText.equals(value, "f") {
                truth = 0
            } else {
                return false
            }
            CanonicalText.appendInt32(1, to: &output)
            output.append(truth)
        case .int2:
            guard let number = CanonicalText.integer(value), number >= Int64(Int16.min), number <= Int64(Int16.max) else { return false }
            CanonicalText.appendInt32(2, to: &output)
            CanonicalText.appendInt16(Int16(number), to: &output)
        case .int4:
            guard let number = CanonicalText.integer(value), number >= Int64(Int32.min), number <= Int64(Int32.max) else { return false }
            CanonicalText.appendInt32(4, to: &output)
            CanonicalText.appendInt32(Int32(number), to: &output)
        case .int8:
            guard let number = CanonicalText.integer(value) else { return false }
            CanonicalText.appendInt32(8, to: &output)
            CanonicalText.appendInt64(number, to: &output)
        case .float4:
            guard let single = CanonicalText.float(value) else { return false }
            CanonicalText.appendInt32(4, to: &output)
            CanonicalText.appendInt32(Int32(bitPattern: single.bitPattern), to: &output)
        case .float8:
            guard let double = CanonicalText.double(value) else { return false }
            CanonicalText.appendInt32(8, to: &output)
            CanonicalText.appendInt64(Int64(bitPattern: double.bitPattern), to: &output)
        case .numeric:
            return CanonicalText.appendNumeric(value, to: &output, groups: &groups)
        case .date:
            guard let days = CanonicalText.date(value) else { return false }
            CanonicalText.appendInt32(4, to: &output)
            CanonicalText.appendInt32(days, to: &output)
        case .timestamp, .timestamptz:
            guard let micros = CanonicalText.timestamp(value, requireOffset: type == .timestamptz) else { return false }
            CanonicalText.appendInt32(8, to: &output)
            CanonicalText.appendInt64(micros, to: &output)
        case .uuid:
            CanonicalText.appendInt32(16, to: &output)
            guard CanonicalText.appendUUID(value, to: &output) else {
                output.removeLast(4)
                return false
            }
        }
        return true
    }

    /// Undoes the COPY text escapes the encoder writes (`\\`, `\n`, `\r`, `\t`) into `scratch`.
    private mutating func unescape(_ raw: UnsafeBufferPointer<UInt8>) {
        scratch.removeAll(keepingCapacity: true)
        var index = 0
        while index < raw.count {
            let byte = raw[index]
            if byte == 0x5C && index + 1 < raw.count {
                switch raw[index + 1] {
                case 0x6E: scratch.append(0x0A)
                case 0x72: scratch.append(0x0D)
                case 0x74: scratch.append(0x09)
                default: scratch.append(raw[index + 1])
                }
                index += 2
            } else {
                scratch.append(byte)
                index += 1
            }
        }
    }
}
