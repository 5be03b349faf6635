#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Parsers for the canonical text of each binary-encoded type. Each returns nil for anything it
/// is not sure Postgres would read the same way; the caller then falls back to text COPY.
enum CanonicalText {
    /// Microseconds from 1970-01-01 to Postgres's epoch, 2000-01-01.
    private static let postgresEpochDays: Int64 = 10_957

    /// `-?[0-9]+` without a leading `+`, in Int64 range.
    static func integer(_ bytes: [UInt8]) -> Int64? {
        var index = 0
        var negative = false
        if bytes.first == 0x2D { negative = true; index = 1 }
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
    static func double(_ bytes: [UInt8]) -> Double? {
        guard isFloatText(bytes) else { return nil }
        return withCString(bytes) { pointer -> Double? in
            errno = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = strtod(pointer, &end)
            guard errno == 0, let end, end.pointee == 0 else { return nil }
            return value
        }
    }

    /// A JSON number (or NaN/Infinity) as float4, read by strtof like Postgres's float4in.
    static func float(_ bytes: [UInt8]) -> Float? {
        guard isFloatText(bytes) else { return nil }
        return withCString(bytes) { pointer -> Float? in
            errno = 0
            var end: UnsafeMutablePointer<CChar>?
            let value = strtof(pointer, &end)
            guard errno == 0, let end, end.pointee == 0 else { return nil }
            return value
        }
    }

    /// A numeric in Postgres's binary layout: base-10000 digits, weight, sign and display scale.
    struct Numeric {
        var digits: [Int16]
        var weight: Int16
        var negative: Bool
        var scale: Int16
        var notANumber = false
    }

    /// Plain decimal text `-?digits[.digits]` (no exponent: Postgres's scale rules for exponents differ).
    static func numeric(_ bytes: [UInt8]) -> Numeric? {
        if bytes == Array("NaN".utf8) {
            return Numeric(digits: [], weight: 0, negative: false, scale: 0, notANumber: true)
        }
        var index = 0
        var negative = false
        if bytes.first == 0x2D { negative = true; index = 1 }
        var integerDigits: [UInt8] = []
        var fractionDigits: [UInt8] = []
        var seenPoint = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x2E {
                guard !seenPoint else { return nil }
                seenPoint = true
            } else {
                let digit = byte &- 0x30
                guard digit < 10 else { return nil }
                if seenPoint { fractionDigits.append(digit) } else { integerDigits.append(digit) }
            }
            index += 1
        }
        guard !integerDigits.isEmpty, !(seenPoint && fractionDigits.isEmpty),
              integerDigits.count <= 131_072, fractionDigits.count <= 16_383 else { return nil }
        while integerDigits.count > 1 && integerDigits.first == 0 { integerDigits.removeFirst() }
        let scale = Int16(fractionDigits.count)
        // Align to groups of four decimal digits around the decimal point.
        let leftPad = (4 - integerDigits.count % 4) % 4
        let rightPad = (4 - fractionDigits.count % 4) % 4
        let all = [UInt8](repeating: 0, count: leftPad) + integerDigits + fractionDigits + [UInt8](repeating: 0, count: rightPad)
        var groups: [Int16] = []
        groups.reserveCapacity(all.count / 4)
        var position = 0
        while position < all.count {
            groups.append(Int16(all[position]) * 1000 + Int16(all[position + 1]) * 100 + Int16(all[position + 2]) * 10 + Int16(all[position + 3]))
            position += 4
        }
        var weight = (integerDigits.count + leftPad) / 4 - 1
        // Postgres stores no leading or trailing zero groups.
        while let first = groups.first, first == 0 {
            groups.removeFirst()
            weight -= 1
        }
        while let last = groups.last, last == 0 { groups.removeLast() }
        if groups.isEmpty {
            return Numeric(digits: [], weight: 0, negative: false, scale: scale)
        }
        return Numeric(digits: groups, weight: Int16(weight), negative: negative, scale: scale)
    }

    /// `YYYY-MM-DD` (years 1 to 9999) as days since 2000-01-01.
    static func date(_ bytes: [UInt8]) -> Int32? {
        guard bytes.count == 10, let parts = dateParts(bytes, 0) else { return nil }
        return Int32(daysFromCivil(parts.year, parts.month, parts.day) - postgresEpochDays)
    }

    /// `YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}]` plus, for timestamptz, a required `Z` or `±HH[:MM]` offset
    /// (without an offset, Postgres would use the session time zone), as microseconds since 2000-01-01.
    /// For timestamp without time zone an offset is refused (Postgres would silently drop it).
    static func timestamp(_ bytes: [UInt8], requireOffset: Bool) -> Int64? {
        guard bytes.count >= 19, let date = dateParts(bytes, 0), bytes[10] == 0x54 || bytes[10] == 0x20,
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

    /// The canonical 8-4-4-4-12 hexadecimal form (either case) as 16 bytes.
    static func uuid(_ bytes: [UInt8]) -> [UInt8]? {
        guard bytes.count == 36, bytes[8] == 0x2D, bytes[13] == 0x2D, bytes[18] == 0x2D, bytes[23] == 0x2D else { return nil }
        var result: [UInt8] = []
        result.reserveCapacity(16)
        var high: UInt8?
        for (offset, byte) in bytes.enumerated() where offset != 8 && offset != 13 && offset != 18 && offset != 23 {
            guard let nibble = hexValue(byte) else { return nil }
            if let first = high {
                result.append(first << 4 | nibble)
                high = nil
            } else {
                high = nibble
            }
        }
        return result
    }

    private static func isFloatText(_ bytes: [UInt8]) -> Bool {
        // JSON number grammar, or the special values Postgres spells the same way.
        if bytes == Array("NaN".utf8) || bytes == Array("Infinity".utf8) || bytes == Array("-Infinity".utf8) { return true }
        guard !bytes.isEmpty, bytes.count < 64 else { return false }
        return bytes.allSatisfy { ($0 &- 0x30) < 10 || $0 == 0x2D || $0 == 0x2B || $0 == 0x2E || $0 == 0x65 || $0 == 0x45 }
            && (bytes[0] == 0x2D || (bytes[0] &- 0x30) < 10)
    }

    private static func withCString<R>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> R) -> R {
        (bytes + [0]).withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) }
        }
    }

    private static func dateParts(_ bytes: [UInt8], _ start: Int) -> (year: Int, month: Int, day: Int)? {
        guard bytes.count >= start + 10, bytes[start + 4] == 0x2D, bytes[start + 7] == 0x2D,
              let hi = twoDigits(bytes, start), let lo = twoDigits(bytes, start + 2),
              let month = twoDigits(bytes, start + 5), let day = twoDigits(bytes, start + 8) else { return nil }
        let year = hi * 100 + lo
        guard year >= 1, (1...12).contains(month), day >= 1 else { return nil }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day <= lengths[month - 1] else { return nil }
        return (year, month, day)
    }

    private static func twoDigits(_ bytes: [UInt8], _ index: Int) -> Int? {
        guard index + 1 < bytes.count else { return nil }
        let tens = bytes[index] &- 0x30
        let ones = bytes[index + 1] &- 0x30
        guard tens < 10, ones < 10 else { return nil }
        return Int(tens) * 10 + Int(ones)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case 0x30...0x39: return byte - 0x30
        case 0x61...0x66: return byte - 0x61 + 10
        case 0x41...0x46: return byte - 0x41 + 10
        default: return nil
        }
    }

    /// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
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
