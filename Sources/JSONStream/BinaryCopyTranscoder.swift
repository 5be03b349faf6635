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

    /// `types`: the column types in COPY column order (the row number column is added as int8).
    public init(types: [BinaryCopyType]) {
        self.types = types
        scratch.reserveCapacity(1 << 16)
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
        appendInt16(Int16(types.count + 1), to: &output)
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
        appendInt32(8, to: &output)
        appendInt64(Int64(rowNumber), to: &output)
    }

    private mutating func field(_ raw: UnsafeBufferPointer<UInt8>, type: BinaryCopyType, row: Int, column: Int,
                                into output: inout [UInt8]) throws(NotCanonical) {
        if raw.count == 2 && raw[0] == 0x5C && raw[1] == 0x4E {  // \N
            appendInt32(-1, to: &output)
            return
        }
        unescape(raw)
        let failure = NotCanonical(row: row, column: column)
        switch type {
        case .text, .json:
            appendInt32(Int32(scratch.count), to: &output)
            output.append(contentsOf: scratch)
        case .jsonb:
            appendInt32(Int32(scratch.count + 1), to: &output)
            output.append(1)
            output.append(contentsOf: scratch)
        case .boolean:
            let value: UInt8
            switch scratch {
            case Array("true".utf8), [0x74]: value = 1
            case Array("false".utf8), [0x66]: value = 0
            default: throw failure
            }
            appendInt32(1, to: &output)
            output.append(value)
        case .int2:
            guard let value = CanonicalText.integer(scratch), value >= Int64(Int16.min), value <= Int64(Int16.max) else { throw failure }
            appendInt32(2, to: &output)
            appendInt16(Int16(value), to: &output)
        case .int4:
            guard let value = CanonicalText.integer(scratch), value >= Int64(Int32.min), value <= Int64(Int32.max) else { throw failure }
            appendInt32(4, to: &output)
            appendInt32(Int32(value), to: &output)
        case .int8:
            guard let value = CanonicalText.integer(scratch) else { throw failure }
            appendInt32(8, to: &output)
            appendInt64(value, to: &output)
        case .float4:
            guard let single = CanonicalText.float(scratch) else { throw failure }
            appendInt32(4, to: &output)
            appendInt32(Int32(bitPattern: single.bitPattern), to: &output)
        case .float8:
            guard let value = CanonicalText.double(scratch) else { throw failure }
            appendInt32(8, to: &output)
            appendInt64(Int64(bitPattern: value.bitPattern), to: &output)
        case .numeric:
            guard let numeric = CanonicalText.numeric(scratch) else { throw failure }
            appendInt32(Int32(8 + 2 * numeric.digits.count), to: &output)
            appendInt16(Int16(numeric.digits.count), to: &output)
            appendInt16(numeric.weight, to: &output)
            appendInt16(numeric.notANumber ? Int16(bitPattern: 0xC000) : (numeric.negative ? 0x4000 : 0), to: &output)
            appendInt16(numeric.scale, to: &output)
            for digit in numeric.digits { appendInt16(digit, to: &output) }
        case .date:
            guard let days = CanonicalText.date(scratch) else { throw failure }
            appendInt32(4, to: &output)
            appendInt32(days, to: &output)
        case .timestamp, .timestamptz:
            guard let micros = CanonicalText.timestamp(scratch, requireOffset: type == .timestamptz) else { throw failure }
            appendInt32(8, to: &output)
            appendInt64(micros, to: &output)
        case .uuid:
            guard let bytes = CanonicalText.uuid(scratch) else { throw failure }
            appendInt32(16, to: &output)
            output.append(contentsOf: bytes)
        }
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

    private func appendInt16(_ value: Int16, to output: inout [UInt8]) {
        let bits = UInt16(bitPattern: value)
        output.append(UInt8(bits >> 8))
        output.append(UInt8(bits & 0xFF))
    }

    private func appendInt32(_ value: Int32, to output: inout [UInt8]) {
        let bits = UInt32(bitPattern: value)
        output.append(UInt8(bits >> 24))
        output.append(UInt8((bits >> 16) & 0xFF))
        output.append(UInt8((bits >> 8) & 0xFF))
        output.append(UInt8(bits & 0xFF))
    }

    private func appendInt64(_ value: Int64, to output: inout [UInt8]) {
        let bits = UInt64(bitPattern: value)
        for shift in stride(from: 56, through: 0, by: -8) {
            output.append(UInt8((bits >> UInt64(shift)) & 0xFF))
        }
    }
}
