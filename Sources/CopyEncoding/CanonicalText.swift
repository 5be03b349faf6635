#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parsers for the canonical text of each binary-encoded type, over raw bytes (no allocation on the
/// common path). Each returns nil for anything it is not sure Postgres would read the same way; the
/// caller then falls back to text COPY.
enum CanonicalText {
    typealias Bytes = UnsafeBufferPointer<UInt8>

    /// Days from 1970-01-01 to Postgres's epoch, 2000-01-01.
    private static let postgresEpochDays: Int64 = 10_957

    /// `-?[0-9]+` without a leading `+`, in Int64 range.
    @inline(__always)
    static func integer(_ bytes: Bytes) -> Int64? {
        var index = 0
        var negative = false
        if bytes.count > 0 && bytes[0] == 0x2D { negative = true; index = 1 }
        guard index < bytes.count, bytes.count - index <= 19 else { return nil }
        var value: Int64 = 0
        while index < bytes.count {
            let digit = bytes[index] &- 0x30
            guard digit < 10 else { return nil }
            let (times, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = negative ? times.subtractingReportingOverflow(Int64(digit)) : times.addingReportingOverflow(Int64(digit))
            guard !overflowA, !overflowB else { return nil }
            value = sum
            index += 1
        }
        return value
    }

    /// A JSON number (or NaN/Infinity) as float8, read by strtod like Postgres's float8in.
    static func double(_ bytes: Bytes) -> Double? {
        parseFloat(bytes) { strtod($0, $1) }
    }

    /// A JSON number (or NaN/Infinity) as float4, read by strtof like Postgres's float4in.
    static func float(_ bytes: Bytes) -> Float? {
        parseFloat(bytes) { strtof($0, $1) }
    }

    /// Runs a C float parser over the whole text; nil on a partial parse or a range error.
    private static func parseFloat<T>(_ bytes: Bytes,
                                      _ parse: (UnsafePointer<CChar>, UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> T) -> T? {
        guard isFloatText(bytes) else { return nil }
        return withCString(bytes) { pointer -> T? in
            errno = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = parse(pointer, &end)
            guard errno == 0, let end, end.pointee == 0 else { return nil }
            return value
        }
    }

    /// Writes a numeric in Postgres's binary layout (length word included): base-10000 digits,
    /// weight, sign and display scale. Accepts `NaN` and plain decimal text `-?digits[.digits]`
    /// (no exponent: Postgres's scale rules for exponents differ). Returns false otherwise.
    static func appendNumeric(_ bytes: Bytes, to output: inout [UInt8], groups: inout [Int16]) -> Bool {
        if bytes.count == 3 && bytes[0] == 0x4E && bytes[1] == 0x61 && bytes[2] == 0x4E {  // NaN
            appendInt32(8, to: &output)
            appendInt16(0, to: &output)
            appendInt16(0, to: &output)
            appendInt16(Int16(bitPattern: 0xC000), to: &output)
            appendInt16(0, to: &output)
            return true
        }
        var start = 0
        var negative = false
        if bytes.count > 0 && bytes[0] == 0x2D { negative = true; start = 1 }
        var point = -1
        var index = start
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x2E {
                guard point < 0 else { return false }
                point = index
            } else if byte &- 0x30 >= 10 {
                return false
            }
            index += 1
        }
        let integerEnd = point < 0 ? bytes.count : point
        var integerStart = start
        guard integerEnd > start, point != bytes.count - 1 else { return false }
        while integerStart < integerEnd - 1 && bytes[integerStart] == 0x30 { integerStart += 1 }
        let integerCount = integerEnd - integerStart
        let fractionCount = point < 0 ? 0 : bytes.count - point - 1
        guard integerCount <= 131_072, fractionCount <= 16_383 else { return false }
        // Groups of four decimal digits aligned on the decimal point.
        let leftPad = (4 - integerCount % 4) % 4
        groups.removeAll(keepingCapacity: true)
        var group: Int16 = 0
        var inGroup = leftPad
        func push(_ digit: UInt8) {
            group = group * 10 + Int16(digit)
            inGroup += 1
            if inGroup == 4 {
                groups.append(group)
                group = 0
                inGroup = 0
            }
        }
        for position in integerStart..<integerEnd { push(bytes[position] &- 0x30) }
        if point >= 0 {
            for position in (point + 1)..<bytes.count { push(bytes[position] &- 0x30) }
        }
        if inGroup > 0 {
            while inGroup < 4 { group *= 10; inGroup += 1 }
            groups.append(group)
        }
        var weight = (integerCount + leftPad) / 4 - 1
        // Postgres stores no leading or trailing zero groups.
        var first = 0
        while first < groups.count && groups[first] == 0 { first += 1; weight -= 1 }
        var last = groups.count
        while last > first && groups[last - 1] == 0 { last -= 1 }
        let count = last - first
        // Postgres's binary numeric holds at most Int16.max digit groups and weights; longer numbers go as text.
        guard count <= Int(Int16.max), weight <= Int(Int16.max), weight >= Int(Int16.min) else { return false }
        appendInt32(Int32(8 + 2 * count), to: &output)
        appendInt16(Int16(count), to: &output)
        appendInt16(count == 0 ? 0 : Int16(weight), to: &output)
        appendInt16(count == 0 || !negative ? 0 : 0x4000, to: &output)
        appendInt16(Int16(fractionCount), to: &output)
        for position in first..<last { appendInt16(groups[position], to: &output) }
        return true
    }

    /// `YYYY-MM-DD` (years 1 to 9999) as days since 2000-01-01.
    @inline(__always)
    static func date(_ bytes: Bytes) -> Int32? {
        guard bytes.count == 10, let parts = dateParts(bytes) else { return nil }
        return Int32(daysFromCivil(parts.year, parts.month, parts.day) - postgresEpochDays)
    }

    /// `YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}]` plus, for timestamptz, a required `Z` or `±HH[:MM]` offset
    /// (without an offset, Postgres would use the session time zone), as microseconds since 2000-01-01.
    /// For timestamp without time zone an offset is refused (Postgres would silently drop it).
    static func timestamp(_ bytes: Bytes, requireOffset: Bool) -> Int64? {
        guard bytes.count >= 19, let date = dateParts(bytes), bytes[10] == 0x54 || bytes[10] == 0x20,
              let hour = twoDigits(bytes, 11), bytes[13] == 0x3A, let minute = twoDigits(bytes, 14), bytes[16] == 0x3A,
              let second = twoDigits(bytes, 17), hour < 24, minute < 60, second < 60 else { return nil }
        var index = 19
        var micros: Int64 = 0
        if index < bytes.count, bytes[index] == 0x2E {
            index += 1
            var digits = 0
            while index < bytes.count, bytes[index] &- 0x30 < 10 {
                guard digits < 6 else { return nil }
                micros = micros * 10 + Int64(bytes[index] &- 0x30)
                digits += 1
                index += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<6 { micros *= 10 }
        }
        var offsetSeconds: Int64 = 0
        if index < bytes.count {
            guard requireOffset else { return nil }
            switch bytes[index] {
            case 0x5A:
                index += 1
            case 0x2B, 0x2D:
                let sign: Int64 = bytes[index] == 0x2D ? -1 : 1
                guard let offsetHours = twoDigits(bytes, index + 1), offsetHours <= 15 else { return nil }
                index += 3
                var offsetMinutes = 0
                if index < bytes.count {
                    if bytes[index] == 0x3A { index += 1 }
                    guard let minutes = twoDigits(bytes, index), minutes < 60 else { return nil }
                    offsetMinutes = minutes
                    index += 2
                }
                offsetSeconds = sign * Int64(offsetHours * 3600 + offsetMinutes * 60)
            default:
                return nil
            }
            guard index == bytes.count else { return nil }
        } else if requireOffset {
            return nil
        }
        let days = daysFromCivil(date.year, date.month, date.day) - postgresEpochDays
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - offsetSeconds
        return seconds * 1_000_000 + micros
    }

    /// Writes the 16 bytes of a canonical 8-4-4-4-12 hexadecimal UUID (either case); false otherwise.
    @inline(__always)
    static func appendUUID(_ bytes: Bytes, to output: inout [UInt8]) -> Bool {
        guard bytes.count == 36, bytes[8] == 0x2D, bytes[13] == 0x2D, bytes[18] == 0x2D, bytes[23] == 0x2D else { return false }
        var index = 0
        var written = 0
        let mark = output.count
        while index < 36 {
            if index == 8 || index == 13 || index == 18 || index == 23 { index += 1; continue }
            guard let high = hexValue(bytes[index]), let low = hexValue(bytes[index + 1]) else {
                output.removeLast(output.count - mark)
                return false
            }
            output.append(high << 4 | low)
            written += 1
            index += 2
        }
        return written == 16
    }

    /// True when `bytes` equal the ASCII `word`.
    @inline(__always)
    static func equals(_ bytes: Bytes, _ word: StaticString) -> Bool {
        guard bytes.count == word.utf8CodeUnitCount else { return false }
        let expected = word.utf8Start
        for index in 0..<bytes.count where bytes[index] != expected[index] { return false }
        return true
    }

    @inline(__always)
    static func appendInt16(_ value: Int16, to output: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { output.append(contentsOf: $0) }
    }

    @inline(__always)
    static func appendInt32(_ value: Int32, to output: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { output.append(contentsOf: $0) }
    }

    @inline(__always)
    static func appendInt64(_ value: Int64, to output: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { output.append(contentsOf: $0) }
    }

    private static func isFloatText(_ bytes: Bytes) -> Bool {
        // JSON number grammar, or the special values Postgres spells the same way.
        if equals(bytes, "NaN") || equals(bytes, "Infinity") || equals(bytes, "-Infinity") { return true }
        guard bytes.count > 0, bytes.count < 64 else { return false }
        return bytes.allSatisfy { ($0 &- 0x30) < 10 || $0 == 0x2D || $0 == 0x2B || $0 == 0x2E || $0 == 0x65 || $0 == 0x45 }
            && (bytes[0] == 0x2D || (bytes[0] &- 0x30) < 10)
    }

    private static func withCString<R>(_ bytes: Bytes, _ body: (UnsafePointer<CChar>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: bytes.count + 1) { buffer in
            for index in 0..<bytes.count { buffer[index] = CChar(bitPattern: bytes[index]) }
            buffer[bytes.count] = 0
            return body(buffer.baseAddress!)
        }
    }

    @inline(__always)
    private static func dateParts(_ bytes: Bytes) -> (year: Int, month: Int, day: Int)? {
        guard bytes.count >= 10, bytes[4] == 0x2D, bytes[7] == 0x2D,
              let hi = twoDigits(bytes, 0), let lo = twoDigits(bytes, 2),
              let month = twoDigits(bytes, 5), let day = twoDigits(bytes, 8) else { return nil }
        let year = hi * 100 + lo
        guard year >= 1, month >= 1, month <= 12, day >= 1 else { return nil }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let length: Int
        switch month {
        case 2: length = leap ? 29 : 28
        case 4, 6, 9, 11: length = 30
        default: length = 31
        }
        guard day <= length else { return nil }
        return (year, month, day)
    }

    @inline(__always)
    private static func twoDigits(_ bytes: Bytes, _ index: Int) -> Int? {
        guard index + 1 < bytes.count else { return nil }
        let tens = bytes[index] &- 0x30
        let ones = bytes[index + 1] &- 0x30
        guard tens < 10, ones < 10 else { return nil }
        return Int(tens) * 10 + Int(ones)
    }

    @inline(__always)
    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x61...0x66: return byte - 0x61 + 10
        case 0x41...0x46: return byte - 0x41 + 10
        default: return nil
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
    @inline(__always)
    private static func daysFromCivil(_ year: Int, _ month: Int, _ day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let m = Int64(month)
        let dayOfYear = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}
