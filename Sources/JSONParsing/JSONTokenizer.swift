/// A resumable, byte-driven scanner for one JSON value (RFC 8259), shared by
/// `CopyRowEncoder` in CopyEncoding (for keys and values of rows) and ``JSONValidator``
/// (for whole documents).
///
/// The scanner is fed bytes with ``scan(_:_:_:)``, which can stop at any byte (also inside
/// a UTF-8 sequence or an escape) and resume with the next chunk. Nesting is tracked on an
/// explicit stack, never on the call stack, so arbitrarily deep input fails cleanly with
/// `depthExceeded`.
///
/// What it writes, depending on ``sink``:
/// - `.none`: nothing (validation only).
/// - `.key`: the decoded string into ``key`` (capped at `keyCapacity` bytes, then
///   ``keyOverflow`` is set; the rest is still validated).
/// - `.field`: the COPY text form of the value into ``out``: strings decoded and
///   COPY-escaped; numbers verbatim; `null` as `\N`; `true`/`false`; objects and arrays as
///   compact JSON (insignificant whitespace dropped, every token copied from the source,
///   backslashes doubled for COPY).
public struct JSONTokenizer: Sendable {
    /// Where output goes.
    public enum Sink: UInt8, Sendable {
        case none, key, field
    }

    /// The lexical state; the scanner resumes from it at the next byte.
    @usableFromInline
    enum State: UInt8, Sendable {
        /// Expecting a value; whitespace is skipped.
        case value
        /// Inside a string body.
        case string
        /// After a backslash inside a string.
        case stringEscape
        /// Inside the four hex digits of `\uXXXX`.
        case stringHex
        /// Inside a multi-byte UTF-8 sequence that straddles a chunk boundary.
        case stringUTF8
        /// After a high-surrogate escape: only `\u` + a low surrogate may follow.
        case stringAfterHigh
        /// Inside a number.
        case number
        /// Inside `true`, `false` or `null`.
        case literal
        /// After `[`: a value or `]`.
        case arrayFirst
        /// After `{`: a key or `}`.
        case objectFirst
        /// After `,` in an object: a key.
        case objectKey
        /// After a key: `:`.
        case colon
        /// After a value inside a container: `,` or the closing bracket.
        case afterValue
    }

    /// How the current string's bytes are written.
    @usableFromInline
    enum StringMode: UInt8, Sendable {
        /// Validate only.
        case discard
        /// Decode into ``key``.
        case key
        /// Decode and COPY-escape into ``out`` (a string that is a whole field).
        case field
        /// Copy the source text (with quotes and escapes) into ``out``, doubling backslashes
        /// (a string inside a nested object or array).
        case nested
    }

    /// Number grammar states: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    enum NumberState: UInt8, Sendable {
        case start, minus, zero, integer, dot, fraction, exponent, exponentSign, exponentDigits
    }

    private static let arrayKind: UInt8 = 0
    private static let objectKind: UInt8 = 1

    // MARK: Configuration

    /// Maximum nesting depth of objects/arrays in one value.
    let maxDepth: Int
    /// Maximum number of bytes written to ``out`` for one value.
    @usableFromInline let maxValueBytes: Int
    /// Whether `\u0000` is an error (`nulCharacter`). PostgreSQL text cannot hold NUL.
    let rejectNUL: Bool
    /// How many decoded key bytes are kept in ``key`` before ``keyOverflow`` is set.
    let keyCapacity: Int
    /// Where output goes for the current value.
    @usableFromInline var sink: Sink = .none

    // MARK: Output

    /// The field output (the encoder's row buffer). Values are appended to it.
    public var out = RowBuffer()
    /// The decoded key, when ``sink`` is `.key`.
    public var key: [UInt8] = []
    /// Set when the decoded key was longer than `keyCapacity` (it then matches no column).
    public var keyOverflow = false

    // MARK: State

    /// Stream offset of byte 0 of the chunk being scanned.
    public var base = 0
    @usableFromInline var state: State = .value
    @usableFromInline var stack: [UInt8] = []
    @usableFromInline var stringMode: StringMode = .discard
    @usableFromInline var stringIsKey = false
    private var hex: UInt32 = 0
    private var hexCount = 0
    @usableFromInline var pendingHigh: UInt32 = 0
    private var escapeOffset = 0
    private var highOffset = 0
    private var utf8Need = 0
    private var utf8Low: UInt8 = 0x80
    private var utf8High: UInt8 = 0xBF
    private var utf8Offset = 0
    private var numberState: NumberState = .start
    private var literalBytes: UInt64 = 0
    private var literalLength = 0
    private var literalPosition = 0
    private var literalIsNull = false
    /// Stream offset where the current value (or key's opening quote) starts.
    @inlinable public var valueOffset: Int { startOffset }
    @usableFromInline var startOffset = 0
    @usableFromInline var fieldLimit = Int.max

    /// A tokenizer with these limits; see the configuration properties for what each one means.
    public init(maxDepth: Int, maxValueBytes: Int, rejectNUL: Bool, keyCapacity: Int) {
        self.maxDepth = max(0, maxDepth)
        self.maxValueBytes = max(0, maxValueBytes)
        self.rejectNUL = rejectNUL
        self.keyCapacity = keyCapacity
    }

    // MARK: Starting

    /// Prepares to scan one value whose first byte (or leading whitespace) is at stream
    /// offset `offset`. With sink `.field` the value is appended to ``out``.
    @inlinable
    public mutating func beginValue(at offset: Int, sink: Sink) {
        self.sink = sink
        state = .value
        if !stack.isEmpty {
            stack.removeAll(keepingCapacity: true)
        }
        pendingHigh = 0
        startOffset = offset
        let start = out.count
        fieldLimit = maxValueBytes > Int.max - start ? Int.max : start + maxValueBytes
    }

    /// Prepares to scan a key string whose opening quote (already consumed) was at stream
    /// offset `offset`; its decoded bytes go to ``key``.
    @inlinable
    public mutating func beginKey(at offset: Int) {
        sink = .key
        if !stack.isEmpty {
            stack.removeAll(keepingCapacity: true)
        }
        startOffset = offset
        key.removeAll(keepingCapacity: true)
        keyOverflow = false
        stringIsKey = false
        stringMode = .key
        pendingHigh = 0
        state = .string
    }

    /// Call at the end of the input when ``scan(_:_:_:)`` has not completed the value:
    /// completes a top-level number (which only ends at a delimiter or the end), otherwise
    /// throws `unexpectedEnd` at `offset`.
    mutating func finishAtEnd(offset: Int) throws(JSONStreamError) {
        if state == .number && stack.isEmpty {
            switch numberState {
            case .zero, .integer, .fraction, .exponentDigits:
                state = .value
                return
            default:
                break
            }
        }
        throw JSONStreamError(code: .unexpectedEnd, byteOffset: offset)
    }

    // MARK: Scanning

    /// Scans `p[i..<end]`, advancing `i`. Returns `true` when the value is complete; `i`
    /// then indexes the first byte after it (a byte that ends a number is not consumed).
    /// Returns `false` when all bytes were consumed and the value is not complete yet.
    public mutating func scan(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ end: Int) throws(JSONStreamError) -> Bool {
        while i < end {
            switch state {
            case .string:
                if try scanStringRun(p, &i, end) {
                    return true
                }
            case .number:
                if try scanNumber(p, &i, end) {
                    return true
                }
            case .value:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x22: // "
                    i &+= 1
                    try startString(isKey: false)
                case 0x7B: // {
                    try push(Self.objectKind, at: i)
                    try emitByte(b)
                    i &+= 1
                    state = .objectFirst
                case 0x5B: // [
                    try push(Self.arrayKind, at: i)
                    try emitByte(b)
                    i &+= 1
                    state = .arrayFirst
                case 0x2D, 0x30...0x39: // - 0-9
                    numberState = .start
                    state = .number
                case 0x74: // t
                    startLiteral(0x6575_7274, length: 4, isNull: false)
                case 0x66: // f
                    startLiteral(0x65_736C_6166, length: 5, isNull: false)
                case 0x6E: // n
                    startLiteral(0x6C6C_756E, length: 4, isNull: true)
                default:
                    throw syntax(i)
                }
            case .afterValue:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x2C: // ,
                    try emitByte(b)
                    i &+= 1
                    state = stack.last == Self.objectKind ? .objectKey : .value
                case 0x5D where stack.last == Self.arrayKind, 0x7D where stack.last == Self.objectKind:
                    try emitByte(b)
                    i &+= 1
                    stack.removeLast()
                    if valueEnded() {
                        return true
                    }
                default:
                    throw syntax(i)
                }
            case .objectFirst, .objectKey:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x22:
                    i &+= 1
                    try startString(isKey: true)
                case 0x7D where state == .objectFirst: // }
                    try emitByte(b)
                    i &+= 1
                    stack.removeLast()
                    if valueEnded() {
                        return true
                    }
                default:
                    throw syntax(i)
                }
            case .colon:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x3A: // :
                    try emitByte(b)
                    i &+= 1
                    state = .value
                default:
                    throw syntax(i)
                }
            case .arrayFirst:
                let b = p[i]
                switch b {
                case 0x20, 0x0A, 0x0D, 0x09:
                    i &+= 1
                case 0x5D: // ]
                    try emitByte(b)
                    i &+= 1
                    stack.removeLast()
                    if valueEnded() {
                        return true
                    }
                default:
                    state = .value // not consumed: scanned as the first element
                }
            case .literal:
                let b = p[i]
                let expected = UInt8(truncatingIfNeeded: literalBytes &>> UInt64(literalPosition &* 8))
                guard b == expected else {
                    throw syntax(i)
                }
                i &+= 1
                literalPosition &+= 1
                if literalPosition == literalLength {
                    try emitLiteral()
                    if valueEnded() {
                        return true
                    }
                }
            case .stringEscape:
                try scanEscape(p[i], at: i)
                i &+= 1
            case .stringHex:
                let b = p[i]
                let digit: UInt8
                switch b {
                case 0x30...0x39: digit = b &- 0x30
                case 0x41...0x46: digit = b &- 0x37
                case 0x61...0x66: digit = b &- 0x57
                default: throw syntax(i)
                }
                if stringMode == .nested {
                    try emitByte(b)
                }
                i &+= 1
                hex = (hex &<< 4) | UInt32(digit)
                hexCount &+= 1
                if hexCount == 4 {
                    try finishUnicodeEscape()
                }
            case .stringUTF8:
                let b = p[i]
                guard b >= utf8Low && b <= utf8High else {
                    throw JSONStreamError(code: .invalidUTF8, byteOffset: utf8Offset)
                }
                try emitStringByte(b)
                i &+= 1
                utf8Low = 0x80
                utf8High = 0xBF
                utf8Need &-= 1
                if utf8Need == 0 {
                    state = .string
                }
            case .stringAfterHigh:
                guard p[i] == 0x5C else {
                    throw JSONStreamError(code: .loneSurrogate, byteOffset: highOffset)
                }
                escapeOffset = base &+ i
                if stringMode == .nested {
                    try emitBackslash()
                }
                i &+= 1
                state = .stringEscape
            }
        }
        return false
    }

    // MARK: Strings

    private mutating func startString(isKey: Bool) throws(JSONStreamError) {
        stringIsKey = isKey
        pendingHigh = 0
        if sink == .none {
            stringMode = .discard
        } else if stack.isEmpty {
            stringMode = sink == .key ? .key : .field
        } else {
            stringMode = .nested
            try emitByte(0x22)
        }
        state = .string
    }

    /// Scans string body bytes, appending plain runs at once. Returns `true` when the
    /// string closed and was the whole value.
    @inline(__always)
    private mutating func scanStringRun(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ end: Int) throws(JSONStreamError) -> Bool {
        var j = i
        run: while j < end {
            if j &+ 8 <= end {
                let word = UInt64(littleEndian: UnsafeRawPointer(p + j).loadUnaligned(as: UInt64.self))
                let mask = Self.specialMask(word)
                if mask == 0 {
                    j &+= 8
                    continue run
                }
                j &+= mask.trailingZeroBitCount &>> 3
            }
            let b = p[j]
            if b < 0x80 {
                if b >= 0x20 && b != 0x22 && b != 0x5C {
                    j &+= 1
                    continue run
                }
                break run
            }
            // A multi-byte UTF-8 sequence: take it whole when it is all in this chunk.
            guard let (need, low, high) = Self.utf8Lead(b) else {
                throw JSONStreamError(code: .invalidUTF8, byteOffset: base &+ j)
            }
            if j &+ need >= end {
                break run
            }
            let b1 = p[j &+ 1]
            var valid = b1 >= low && b1 <= high
            if need >= 2 {
                valid = valid && (p[j &+ 2] & 0xC0) == 0x80
                if need == 3 {
                    valid = valid && (p[j &+ 3] & 0xC0) == 0x80
                }
            }
            guard valid else {
                throw JSONStreamError(code: .invalidUTF8, byteOffset: base &+ j)
            }
            j &+= need &+ 1
        }
        try flushRun(p, from: i, to: j)
        i = j
        if j == end {
            return false
        }
        let b = p[j]
        switch b {
        case 0x22: // closing quote
            i &+= 1
            if stringMode == .nested {
                try emitByte(0x22)
            }
            if stringIsKey {
                state = .colon
                return false
            }
            return valueEnded()
        case 0x5C: // backslash
            escapeOffset = base &+ j
            if stringMode == .nested {
                try emitBackslash()
            }
            i &+= 1
            state = .stringEscape
            return false
        case 0x80...0xFF: // a sequence that continues in the next chunk
            guard let (need, low, high) = Self.utf8Lead(b) else {
                throw JSONStreamError(code: .invalidUTF8, byteOffset: base &+ j)
            }
            utf8Need = need
            utf8Low = low
            utf8High = high
            utf8Offset = base &+ j
            try emitStringByte(b)
            i &+= 1
            state = .stringUTF8
            return false
        default: // raw control character
            throw syntax(j)
        }
    }

    /// Nonzero when `word` contains a byte that ends a plain string run: `"`, `\`, a
    /// control character (< 0x20) or a non-ASCII byte. The lowest set bit marks the first.
    @inline(__always)
    private static func specialMask(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let quoteHit = (quote &- ones) & ~quote
        let backslashHit = (backslash &- ones) & ~backslash
        let controlHit = (word &- ones &* 0x20) & ~word
        return (quoteHit | backslashHit | controlHit | word) & highs
    }

    /// For a UTF-8 lead byte: the number of continuation bytes and the allowed range of
    /// the first one (which excludes overlongs, surrogates and code points > U+10FFFF).
    @inline(__always)
    private static func utf8Lead(_ b: UInt8) -> (Int, UInt8, UInt8)? {
        switch b {
        case 0xC2...0xDF: (1, 0x80, 0xBF)
        case 0xE0: (2, 0xA0, 0xBF)
        case 0xE1...0xEC, 0xEE, 0xEF: (2, 0x80, 0xBF)
        case 0xED: (2, 0x80, 0x9F)
        case 0xF0: (3, 0x90, 0xBF)
        case 0xF1...0xF3: (3, 0x80, 0xBF)
        case 0xF4: (3, 0x80, 0x8F)
        default: nil
        }
    }

    /// Handles the byte after a backslash.
    @inline(__always)
    private mutating func scanEscape(_ b: UInt8, at i: Int) throws(JSONStreamError) {
        if pendingHigh != 0 && b != 0x75 {
            throw JSONStreamError(code: .loneSurrogate, byteOffset: highOffset)
        }
        let decoded: UInt8
        switch b {
        case 0x22, 0x5C, 0x2F: decoded = b // " \ /
        case 0x62: decoded = 0x08 // b
        case 0x66: decoded = 0x0C // f
        case 0x6E: decoded = 0x0A // n
        case 0x72: decoded = 0x0D // r
        case 0x74: decoded = 0x09 // t
        case 0x75: // u
            if stringMode == .nested {
                try emitByte(b)
            }
            hex = 0
            hexCount = 0
            state = .stringHex
            return
        default:
            throw syntax(i)
        }
        switch stringMode {
        case .discard:
            break
        case .nested:
            if b == 0x5C {
                try emitBackslash()
            } else {
                try emitByte(b)
            }
        case .key:
            appendKey(decoded)
        case .field:
            try emitCopyEscaped(decoded)
        }
        state = .string
    }

    /// Completes `\uXXXX` (in ``hex``): pairs surrogates and writes the scalar.
    private mutating func finishUnicodeEscape() throws(JSONStreamError) {
        let unit = hex
        var scalar = unit
        if pendingHigh != 0 {
            guard unit >= 0xDC00 && unit <= 0xDFFF else {
                throw JSONStreamError(code: .loneSurrogate, byteOffset: highOffset)
            }
            scalar = 0x10000 &+ ((pendingHigh &- 0xD800) &<< 10) &+ (unit &- 0xDC00)
            pendingHigh = 0
        } else if unit >= 0xD800 && unit <= 0xDBFF {
            pendingHigh = unit
            highOffset = escapeOffset
            state = .stringAfterHigh
            return
        } else if unit >= 0xDC00 && unit <= 0xDFFF {
            throw JSONStreamError(code: .loneSurrogate, byteOffset: escapeOffset)
        } else if unit == 0 && rejectNUL {
            throw JSONStreamError(code: .nulCharacter, byteOffset: escapeOffset)
        }
        state = .string
        switch stringMode {
        case .discard, .nested:
            return
        case .key, .field:
            break
        }
        if scalar < 0x80 {
            if stringMode == .key {
                appendKey(UInt8(scalar))
            } else {
                try emitCopyEscaped(UInt8(scalar))
            }
            return
        }
        var encoded: UInt32 // little-endian packed UTF-8 bytes
        var count: Int
        if scalar < 0x800 {
            encoded = (0xC0 | (scalar &>> 6)) | ((0x80 | (scalar & 0x3F)) &<< 8)
            count = 2
        } else if scalar < 0x10000 {
            encoded = (0xE0 | (scalar &>> 12))
                | ((0x80 | ((scalar &>> 6) & 0x3F)) &<< 8)
                | ((0x80 | (scalar & 0x3F)) &<< 16)
            count = 3
        } else {
            encoded = (0xF0 | (scalar &>> 18))
                | ((0x80 | ((scalar &>> 12) & 0x3F)) &<< 8)
                | ((0x80 | ((scalar &>> 6) & 0x3F)) &<< 16)
                | ((0x80 | (scalar & 0x3F)) &<< 24)
            count = 4
        }
        while count > 0 {
            let byte = UInt8(truncatingIfNeeded: encoded)
            if stringMode == .key {
                appendKey(byte)
            } else {
                try emitByte(byte)
            }
            encoded &>>= 8
            count &-= 1
        }
    }

    // MARK: Numbers and literals

    /// Scans number bytes. Returns `true` when the number ended and was the whole value.
    @inline(__always)
    private mutating func scanNumber(_ p: UnsafePointer<UInt8>, _ i: inout Int, _ end: Int) throws(JSONStreamError) -> Bool {
        let start = i
        var j = i
        var ns = numberState
        var ended = false
        scan: while j < end {
            let b = p[j]
            let isDigit = b &- 0x30 < 10
            switch ns {
            case .start:
                ns = b == 0x2D ? .minus : (b == 0x30 ? .zero : .integer)
            case .minus:
                guard isDigit else {
                    throw syntax(j)
                }
                ns = b == 0x30 ? .zero : .integer
            case .zero:
                if b == 0x2E {
                    ns = .dot
                } else if (b | 0x20) == 0x65 {
                    ns = .exponent
                } else {
                    ended = true
                    break scan
                }
            case .integer:
                if isDigit {
                    break
                } else if b == 0x2E {
                    ns = .dot
                } else if (b | 0x20) == 0x65 {
                    ns = .exponent
                } else {
                    ended = true
                    break scan
                }
            case .dot:
                guard isDigit else {
                    throw syntax(j)
                }
                ns = .fraction
            case .fraction:
                if isDigit {
                    break
                } else if (b | 0x20) == 0x65 {
                    ns = .exponent
                } else {
                    ended = true
                    break scan
                }
            case .exponent:
                if b == 0x2B || b == 0x2D {
                    ns = .exponentSign
                } else if isDigit {
                    ns = .exponentDigits
                } else {
                    throw syntax(j)
                }
            case .exponentSign:
                guard isDigit else {
                    throw syntax(j)
                }
                ns = .exponentDigits
            case .exponentDigits:
                if !isDigit {
                    ended = true
                    break scan
                }
            }
            j &+= 1
        }
        numberState = ns
        if sink == .field && j > start {
            try emitBytes(p + start, count: j &- start)
        }
        i = j
        if ended {
            return valueEnded()
        }
        return false
    }

    private mutating func startLiteral(_ bytes: UInt64, length: Int, isNull: Bool) {
        literalBytes = bytes
        literalLength = length
        literalPosition = 0
        literalIsNull = isNull
        state = .literal
    }

    private mutating func emitLiteral() throws(JSONStreamError) {
        guard sink == .field else {
            return
        }
        if literalIsNull && stack.isEmpty {
            try emitByte(0x5C) // \N: a NULL field
            try emitByte(0x4E)
            return
        }
        var bytes = literalBytes
        for _ in 0 ..< literalLength {
            try emitByte(UInt8(truncatingIfNeeded: bytes))
            bytes &>>= 8
        }
    }

    // MARK: Structure

    @inline(__always)
    private mutating func push(_ kind: UInt8, at i: Int) throws(JSONStreamError) {
        guard stack.count < maxDepth else {
            throw JSONStreamError(code: .depthExceeded, byteOffset: base &+ i)
        }
        stack.append(kind)
    }

    /// A value inside the scanned value (or the value itself) ended. Returns `true` when
    /// that was the whole value.
    @inline(__always)
    private mutating func valueEnded() -> Bool {
        if stack.isEmpty {
            state = .value
            return true
        }
        state = .afterValue
        return false
    }

    // MARK: Output

    @inline(__always)
    private func syntax(_ i: Int) -> JSONStreamError {
        JSONStreamError(code: .syntax, byteOffset: base &+ i)
    }

    @inline(__always)
    private func tooLarge() -> JSONStreamError {
        JSONStreamError(code: .valueTooLarge, byteOffset: valueOffset)
    }

    /// Writes a run of string bytes that need no escaping.
    @inline(__always)
    private mutating func flushRun(_ p: UnsafePointer<UInt8>, from start: Int, to end: Int) throws(JSONStreamError) {
        guard end > start else {
            return
        }
        switch stringMode {
        case .discard:
            return
        case .key:
            appendKey(p + start, count: end &- start)
        case .field, .nested:
            try emitBytes(p + start, count: end &- start)
        }
    }

    @inline(__always)
    private mutating func emitStringByte(_ b: UInt8) throws(JSONStreamError) {
        switch stringMode {
        case .discard:
            return
        case .key:
            appendKey(b)
        case .field, .nested:
            try emitByte(b)
        }
    }

    /// Writes bytes to ``out`` (sink `.field` only), enforcing the value size limit
    /// before growing the buffer.
    @inline(__always)
    private mutating func emitBytes(_ p: UnsafePointer<UInt8>, count: Int) throws(JSONStreamError) {
        guard sink == .field else {
            return
        }
        guard count <= fieldLimit &- out.count else {
            throw tooLarge()
        }
        out.append(p, count: count)
    }

    @inline(__always)
    private mutating func emitByte(_ b: UInt8) throws(JSONStreamError) {
        guard sink == .field else {
            return
        }
        guard out.count < fieldLimit else {
            throw tooLarge()
        }
        out.append(b)
    }

    /// Writes a backslash inside a nested value's string: doubled for COPY.
    @inline(__always)
    private mutating func emitBackslash() throws(JSONStreamError) {
        try emitByte(0x5C)
        try emitByte(0x5C)
    }

    /// Writes one decoded ASCII byte of a field string, COPY-escaping backslash, newline,
    /// carriage return and tab.
    @inline(__always)
    private mutating func emitCopyEscaped(_ b: UInt8) throws(JSONStreamError) {
        switch b {
        case 0x5C:
            try emitByte(0x5C)
            try emitByte(0x5C)
        case 0x0A:
            try emitByte(0x5C)
            try emitByte(0x6E)
        case 0x0D:
            try emitByte(0x5C)
            try emitByte(0x72)
        case 0x09:
            try emitByte(0x5C)
            try emitByte(0x74)
        default:
            try emitByte(b)
        }
    }

    @inline(__always)
    private mutating func appendKey(_ b: UInt8) {
        if key.count < keyCapacity {
            key.append(b)
        } else {
            keyOverflow = true
        }
    }

    @inline(__always)
    private mutating func appendKey(_ p: UnsafePointer<UInt8>, count: Int) {
        let room = keyCapacity &- key.count
        if count <= room {
            key.append(contentsOf: UnsafeBufferPointer(start: p, count: count))
        } else {
            if room > 0 {
                key.append(contentsOf: UnsafeBufferPointer(start: p, count: room))
            }
            keyOverflow = true
        }
    }
}
