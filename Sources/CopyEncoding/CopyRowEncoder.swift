import JSONParsing

/// Turns a stream of JSON objects into PostgreSQL `COPY ... FROM STDIN` **text format**
/// lines, chunk by chunk, without holding the whole input in memory.
///
/// # Input
/// - The form is detected from the first non-whitespace byte: `[` means a JSON array of
///   objects; `{` means NDJSON (objects separated by JSON whitespace — space, tab, CR,
///   LF — at least one whitespace byte between two objects; blank lines are allowed).
///   Any other value there is ``JSONStreamError/Code/notAnObject``; any other byte is
///   ``JSONStreamError/Code/syntax``.
/// - **A UTF-8 byte order mark is rejected** (``JSONStreamError/Code/syntax`` at byte 0),
///   as RFC 8259 forbids generators to add one and our own extractor never does.
/// - Empty input (or only whitespace) is ``JSONStreamError/Code/unexpectedEnd`` (from
///   ``finish(into:)``). `[]` is zero rows. Anything but whitespace after the closing `]`
///   is ``JSONStreamError/Code/trailingData``. Every element of the array, and every
///   top-level NDJSON value, must be an object (``JSONStreamError/Code/notAnObject``).
/// - Chunks may split the input anywhere, including inside a UTF-8 sequence, an escape or
///   a number; the output does not depend on how the input was split.
///
/// # Rows
/// Each object is one row. Every key must be one of `columns` (exact, case-sensitive, after
/// decoding escapes), else ``JSONStreamError/Code/unknownColumn`` with `column` set to the
/// key truncated to 64 bytes (at a UTF-8 boundary). Every column must appear, else
/// ``JSONStreamError/Code/missingColumn`` naming the first missing column in column order.
/// A key appearing twice is ``JSONStreamError/Code/duplicateColumn``. Keys may come in any
/// order; fields are written in `columns` order, separated by TAB, and the line ends with
/// `\n`. With ``Options/appendRowNumber`` the 1-based row number is written as an extra
/// last field.
///
/// # Values
/// - `null` → `\N` (SQL NULL); `true`/`false` → `true`/`false`.
/// - Numbers are validated against the JSON number grammar (no leading zeros, no `+`, no
///   `.5`, no `1.`, …) and written as their **exact source text**. Out-of-range numbers
///   such as `1e99999` are passed through verbatim: the database column type decides
///   whether they fit.
/// - Strings are decoded (all escapes, `\uXXXX` with surrogate pairs → UTF-8) and checked:
///   malformed UTF-8 (overlongs, encoded surrogates, > U+10FFFF, truncated or stray
///   continuation bytes) → ``JSONStreamError/Code/invalidUTF8``; an unpaired surrogate
///   escape → ``JSONStreamError/Code/loneSurrogate``; `\u0000` →
///   ``JSONStreamError/Code/nulCharacter`` (PostgreSQL text cannot hold NUL); a raw control
///   character (< 0x20) → ``JSONStreamError/Code/syntax``.
///   They are then COPY-escaped: backslash → `\\`, newline → `\n`, carriage return → `\r`,
///   tab → `\t`; every other byte is written as is.
/// - Nested objects and arrays are written as **compact JSON text**: insignificant
///   whitespace between tokens is dropped and every token (strings with their original
///   escapes, numbers) is copied from the source unchanged. They are fully validated with
///   the same string rules as above (so `\u0000` and lone surrogates are rejected inside
///   them too, as `jsonb` would), limited to ``Options/maxDepth`` levels, and COPY-escaped
///   (every backslash doubled; compact text contains no raw newline or tab). Example:
///   `{"a": [1, "x\ty"]}` → `{"a":[1,"x\\ty"]}`.
/// - A column given in `base64Columns` (the manifest's `"encoding": "base64"`) must hold null or a string of
///   canonical base64; it is written as bytea's hex input (`\\x00ff`), else
///   ``JSONStreamError/Code/invalidBase64``.
/// - A value whose COPY text exceeds ``Options/maxValueBytes`` is
///   ``JSONStreamError/Code/valueTooLarge``; the check happens before each append, so the
///   buffer never grows past the limit.
///
/// # Memory and errors
/// Memory is bounded by the largest row (its COPY text, plus one byte of nesting stack per
/// open bracket) plus the caller's chunk. Parsing is a byte-driven state machine with an
/// explicit nesting stack; it never recurses, so 100,000 nested `[` fail with
/// ``JSONStreamError/Code/depthExceeded`` instead of crashing.
///
/// Errors are ``JSONStreamError`` values carrying a code, the row number, the column name
/// and the byte offset — never bytes of the data. After an error the encoder is failed:
/// every later call throws the same error. Rows completed before the error in the same
/// ``feed(_:into:)`` call have already been appended to the output. Calling
/// ``feed(_:into:)`` with a non-empty chunk after a successful ``finish(into:)`` is
/// ``JSONStreamError/Code/trailingData``.
///
/// ```swift
/// var encoder = CopyRowEncoder(columns: ["id", "name"])
/// var out: [UInt8] = []
/// try chunk.withUnsafeBytes { try encoder.feed($0, into: &out) }   // for every chunk
/// try encoder.finish(into: &out)
/// ```
public struct CopyRowEncoder: Sendable {
    /// Where the encoder is in the document, outside the tokenizer.
    private enum Phase: UInt8, Sendable {
        /// Before the first non-whitespace byte.
        case start
        /// After `[`: `{` or `]`.
        case arrayFirst
        /// After `,` in the array: `{`.
        case arrayElement
        /// After a row in the array: `,` or `]`.
        case arrayAfterRow
        /// After the closing `]`: whitespace only.
        case arrayClosed
        /// NDJSON, between rows after whitespace: `{`.
        case ndjsonBetween
        /// NDJSON, right after a row: whitespace.
        case ndjsonAfterRow
        /// After a row's `{`: a key or `}`.
        case objectFirst
        /// After `,` in a row: a key.
        case objectKey
        /// Inside a key that the tokenizer decodes.
        case key
        /// After a key: `:`.
        case colon
        /// After `:`: whitespace, then the value.
        case valueStart
        /// Inside a value that the tokenizer scans.
        case value
        /// After a value: `,` or `}`.
        case afterValue
        /// ``finish(into:)`` succeeded.
        case finished
    }

    private let options: Options
    private let table: ColumnTable
    /// `base64[c]`: column `c` holds base64 text that lands as bytea (``init(columns:base64Columns:options:)``).
    private let base64: [Bool]
    /// The first byte of the value being scanned, and its stream offset (for a base64 column's checks).
    private var valueFirstByte: UInt8 = 0
    private var valueOffset = 0
    /// Scratch for a base64 value's bytes, reused.
    private var decoded: [UInt8] = []
    private var hex: [UInt8] = []
    /// Scans keys and values; its `out` is the row buffer (`\t` + field per value).
    private var tokenizer: JSONTokenizer
    private var phase: Phase = .start
    private var isArray = false
    /// Stream offset of the current chunk's first byte.
    private var consumed = 0
    private var failure: JSONStreamError?

    // Per-row state, reused across rows.
    private var generation = 0
    /// `seen[c] == generation` when column `c` has appeared in the current row.
    private var seen: [Int]
    private var fieldStart: [Int]
    private var fieldEnd: [Int]
    private var seenCount = 0
    private var currentColumn = -1
    private var lastColumn = -1
    /// `following[c + 1]` is the column whose key came after column `c` (`following[0]`: the
    /// first key) in the last row that had it: the guess tried first for the next key.
    private var following: [Int]
    /// Whether the keys so far came in column order (then the row buffer is the line).
    private var inOrder = true

    /// Rows completed so far.
    public private(set) var rowCount = 0

    /// Creates an encoder.
    ///
    /// - Parameters:
    ///   - columns: the expected keys, in COPY column order (exact, case-sensitive match).
    ///     Names must be distinct (a duplicate is a programmer error and traps).
    ///   - options: limits and whether to append the row number.
    ///   - base64Columns: the columns whose values are base64 text of bytes (the manifest's `"encoding":
    ///     "base64"`): each must be null or a string of canonical base64, else
    ///     ``JSONStreamError/Code/invalidBase64``, and is written as bytea's hex input (`\\x…`). Defaults to none.
    public init(columns: [String], base64Columns: Set<String> = [], options: Options = .init()) {
        self.options = options
        table = ColumnTable(columns: columns)
        base64 = columns.map { base64Columns.contains($0) }
        tokenizer = JSONTokenizer(
            maxDepth: options.maxDepth,
            maxValueBytes: options.maxValueBytes,
            rejectNUL: true,
            keyCapacity: max(table.maxNameLength + 1, 68)
        )
        seen = Array(repeating: 0, count: columns.count)
        fieldStart = Array(repeating: 0, count: columns.count)
        fieldEnd = Array(repeating: 0, count: columns.count)
        following = Array(0 ... columns.count)
    }

    /// Parses `chunk`; appends every row completed in it to `output` as COPY text lines.
    ///
    /// A chunk may end anywhere; an incomplete row is kept internally until a later chunk
    /// completes it. Throws the first problem found as a ``JSONStreamError``.
    public mutating func feed(_ chunk: UnsafeRawBufferPointer, into output: inout [UInt8]) throws(JSONStreamError) {
        if let failure {
            throw failure
        }
        guard chunk.count > 0, let raw = chunk.baseAddress else {
            return
        }
        guard phase != .finished else {
            throw record(JSONStreamError(code: .trailingData, byteOffset: consumed))
        }
        let p = raw.assumingMemoryBound(to: UInt8.self)
        tokenizer.base = consumed
        tokenizer.out.makeUnique()
        do {
            try run(p, chunk.count, &output)
        } catch {
            throw record(error)
        }
        consumed += chunk.count
    }

    /// Call at end of input: checks the document is complete (array closed, no partial object).
    ///
    /// Rows are written as soon as their closing `}` is read, so this writes nothing; it
    /// throws ``JSONStreamError/Code/unexpectedEnd`` if the input was empty or stopped inside
    /// the array, an object or a value.
    public mutating func finish(into output: inout [UInt8]) throws(JSONStreamError) {
        if let failure {
            throw failure
        }
        switch phase {
        case .arrayClosed, .ndjsonBetween, .ndjsonAfterRow, .finished:
            phase = .finished
        default:
            throw record(JSONStreamError(code: .unexpectedEnd, byteOffset: consumed))
        }
    }

    // MARK: Driver

    private mutating func run(_ p: UnsafePointer<UInt8>, _ n: Int, _ output: inout [UInt8]) throws(JSONStreamError) {
        var i = 0
        while i < n {
            switch phase {
            case .value:
                if try tokenizer.scan(p, &i, n) {
                    if base64[currentColumn] {
                        try decodeBase64Value()
                    }
                    fieldEnd[currentColumn] = tokenizer.out.count
                    phase = .afterValue
                }
            case .afterValue:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x2C: // ,
                    i &+= 1
                    phase = .objectKey
                case 0x7D: // }
                    try endRow(at: i, &output)
                    i &+= 1
                default:
                    throw syntax(i)
                }
            case .objectFirst, .objectKey:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x22: // "
                    try startKey(p, &i, n)
                case 0x7D where phase == .objectFirst:
                    try endRow(at: i, &output)
                    i &+= 1
                default:
                    throw syntax(i)
                }
            case .colon:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x3A: // :
                    i &+= 1
                    phase = .valueStart
                default:
                    throw syntax(i)
                }
            case .valueStart:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                default:
                    valueFirstByte = b
                    valueOffset = consumed &+ i
                    tokenizer.out.append(0x09)
                    fieldStart[currentColumn] = tokenizer.out.count
                    tokenizer.beginValue(at: consumed &+ i, sink: .field)
                    phase = .value
                }
            case .key:
                if try tokenizer.scan(p, &i, n) {
                    let hint = following[lastColumn &+ 1]
                    let column = tokenizer.key.withUnsafeBufferPointer { key in
                        table.index(of: key.baseAddress, count: key.count, hint: hint)
                    }
                    try acceptKey(column, overflow: tokenizer.keyOverflow, name: tokenizer.key, at: tokenizer.valueOffset)
                    phase = .colon
                }
            case .start:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x5B: // [
                    isArray = true
                    i &+= 1
                    phase = .arrayFirst
                case 0x7B: // {
                    isArray = false
                    beginRow()
                    i &+= 1
                default:
                    throw notAnObjectOrSyntax(b, at: i)
                }
            case .arrayFirst, .arrayElement:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x7B:
                    beginRow()
                    i &+= 1
                case 0x5D where phase == .arrayFirst: // ]
                    i &+= 1
                    phase = .arrayClosed
                default:
                    throw notAnObjectOrSyntax(b, at: i)
                }
            case .arrayAfterRow:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x2C:
                    i &+= 1
                    phase = .arrayElement
                case 0x5D:
                    i &+= 1
                    phase = .arrayClosed
                default:
                    throw syntax(i)
                }
            case .arrayClosed:
                switch p[i] {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                default:
                    throw JSONStreamError(code: .trailingData, byteOffset: consumed &+ i)
                }
            case .ndjsonBetween:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x7B:
                    beginRow()
                    i &+= 1
                default:
                    throw notAnObjectOrSyntax(b, at: i)
                }
            case .ndjsonAfterRow:
                switch p[i] {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                    phase = .ndjsonBetween
                default:
                    throw syntax(i)
                }
            case .finished:
                throw JSONStreamError(code: .trailingData, byteOffset: consumed &+ i)
            }
        }
    }

    // MARK: Rows and keys

    private mutating func beginRow() {
        tokenizer.out.removeAll()
        generation &+= 1
        seenCount = 0
        currentColumn = -1
        lastColumn = -1
        inOrder = true
        phase = .objectFirst
    }

    /// `p[i]` is a key's opening quote. Plain ASCII keys that end in this chunk are matched
    /// in place; others are decoded by the tokenizer.
    @inline(__always)
    private mutating func startKey(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ n: Int) throws(JSONStreamError) {
        let keyStart = i &+ 1
        // Fastest: the key is the column expected next, spelled plainly.
        let hint = following[lastColumn &+ 1]
        if let length = table.matchesRaw(hint, p + keyStart, available: n &- keyStart) {
            try acceptKey(hint, overflow: false, name: [], at: consumed &+ i)
            i = keyStart &+ length &+ 1
            phase = .colon
            return
        }
        var j = keyStart
        while j < n {
            let b = p[j]
            if b == 0x22 || b == 0x5C || b < 0x20 || b >= 0x80 {
                break
            }
            j &+= 1
        }
        if j < n && p[j] == 0x22 {
            let count = j &- keyStart
            let column = table.index(of: p + keyStart, count: count, hint: hint)
            if column < 0 {
                throw unknownColumn(UnsafeBufferPointer(start: p + keyStart, count: count), at: consumed &+ i)
            }
            try acceptKey(column, overflow: false, name: [], at: consumed &+ i)
            i = j &+ 1
            phase = .colon
        } else {
            tokenizer.beginKey(at: consumed &+ i)
            i = keyStart
            phase = .key
        }
    }

    /// Records that `column` (or -1 = unknown) appeared in the current row.
    @inline(__always)
    private mutating func acceptKey(_ column: Int, overflow: Bool, name: [UInt8], at offset: Int) throws(JSONStreamError) {
        guard column >= 0 && !overflow else {
            throw name.withUnsafeBufferPointer { unknownColumn($0, at: offset) }
        }
        guard seen[column] != generation else {
            throw JSONStreamError(
                code: .duplicateColumn, row: rowCount &+ 1, column: table.names[column], byteOffset: offset)
        }
        seen[column] = generation
        seenCount &+= 1
        if column != lastColumn &+ 1 {
            inOrder = false
        }
        following[lastColumn &+ 1] = column
        lastColumn = column
        currentColumn = column
    }

    /// The row's closing `}` is at `p[i]`: checks completeness and writes the line.
    private mutating func endRow(at i: Int, _ output: inout [UInt8]) throws(JSONStreamError) {
        let count = table.count
        if seenCount != count {
            var missing = 0
            while seen[missing] == generation {
                missing &+= 1
            }
            throw JSONStreamError(
                code: .missingColumn, row: rowCount &+ 1, column: table.names[missing], byteOffset: consumed &+ i)
        }
        rowCount &+= 1
        // Build the line's tail in the row buffer, then copy the line out at once.
        let lineStart: Int
        if inOrder {
            lineStart = count > 0 ? 1 : 0 // skip the tab written before the first field
        } else {
            lineStart = tokenizer.out.count
            for column in 0 ..< count {
                if column > 0 {
                    tokenizer.out.append(0x09)
                }
                tokenizer.out.appendCopy(from: fieldStart[column], to: fieldEnd[column])
            }
        }
        if options.appendRowNumber {
            if count > 0 {
                tokenizer.out.append(0x09)
            }
            Self.appendDecimal(rowCount, to: &tokenizer.out)
        }
        tokenizer.out.append(0x0A)
        output.append(
            contentsOf: UnsafeBufferPointer(start: tokenizer.out.base + lineStart, count: tokenizer.out.count &- lineStart))
        phase = isArray ? .arrayAfterRow : .ndjsonAfterRow
    }

    private static func appendDecimal(_ value: Int, to buffer: inout RowBuffer) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0) // 24 bytes, enough for Int.max
        var remaining = value
        var count = 0
        withUnsafeMutableBytes(of: &digits) { bytes in
            repeat {
                bytes[23 &- count] = 0x30 &+ UInt8(truncatingIfNeeded: remaining % 10)
                remaining /= 10
                count &+= 1
            } while remaining > 0
            buffer.append(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self) + (24 &- count), count: count)
        }
    }

    /// The value just scanned is a base64 column's: null stays `\N`; a string of canonical base64 is replaced in the
    /// row buffer by bytea's hex input; anything else is ``JSONStreamError/Code/invalidBase64`` at the value's
    /// first byte. Base64's alphabet needs no COPY escaping, so the buffer holds the string as decoded from JSON.
    private mutating func decodeBase64Value() throws(JSONStreamError) {
        if valueFirstByte == 0x6E { // null
            return
        }
        let start = fieldStart[currentColumn]
        guard valueFirstByte == 0x22,
              Base64Field.decode(tokenizer.out.base + start, count: tokenizer.out.count &- start, into: &decoded) else {
            throw JSONStreamError(code: .invalidBase64, row: rowCount &+ 1, column: table.names[currentColumn], byteOffset: valueOffset)
        }
        guard Base64Field.hexLength(decoded.count) <= options.maxValueBytes else {
            throw JSONStreamError(code: .valueTooLarge, row: rowCount &+ 1, column: table.names[currentColumn], byteOffset: valueOffset)
        }
        hex.removeAll(keepingCapacity: true)
        Base64Field.appendHex(decoded, to: &hex)
        tokenizer.out.truncate(to: start)
        hex.withUnsafeBufferPointer { tokenizer.out.append($0.baseAddress!, count: $0.count) }
    }

    // MARK: Errors

    @inline(__always)
    private func syntax(_ i: Int) -> JSONStreamError {
        JSONStreamError(code: .syntax, byteOffset: consumed &+ i)
    }

    /// A byte where a row was expected: a value that is not an object, or not JSON at all.
    private func notAnObjectOrSyntax(_ b: UInt8, at i: Int) -> JSONStreamError {
        switch b {
        case 0x22, 0x2D, 0x30 ... 0x39, 0x5B, 0x74, 0x66, 0x6E: // " - 0-9 [ t f n
            JSONStreamError(code: .notAnObject, row: rowCount &+ 1, byteOffset: consumed &+ i)
        default:
            JSONStreamError(code: .syntax, byteOffset: consumed &+ i)
        }
    }

    /// An unknown-column error naming the key: at most 64 bytes, cut at a UTF-8 boundary,
    /// and only if those bytes are valid UTF-8.
    private func unknownColumn(_ key: UnsafeBufferPointer<UInt8>, at offset: Int) -> JSONStreamError {
        var cut = min(key.count, 64)
        while cut > 0 && cut < key.count && (key[cut] & 0xC0) == 0x80 {
            cut -= 1
        }
        let prefix = UnsafeBufferPointer(rebasing: key[..<cut])
        let decoded = String(decoding: prefix, as: UTF8.self)
        // Decoding replaces malformed bytes with U+FFFD, so a round trip proves validity.
        let name = decoded.utf8.elementsEqual(prefix) ? decoded : nil
        return JSONStreamError(code: .unknownColumn, row: rowCount &+ 1, column: name, byteOffset: offset)
    }

    /// Adds the row and column context to an error and makes the encoder failed.
    private mutating func record(_ error: JSONStreamError) -> JSONStreamError {
        var error = error
        let inRow: Bool
        switch phase {
        case .objectFirst, .objectKey, .key, .colon, .valueStart, .value, .afterValue:
            inRow = true
        default:
            inRow = false
        }
        if error.row == nil && inRow {
            error.row = rowCount &+ 1
        }
        if error.column == nil && currentColumn >= 0 {
            switch phase {
            case .colon, .valueStart, .value:
                error.column = table.names[currentColumn]
            default:
                break
            }
        }
        failure = error
        return error
    }
}
