import StarpipeCore

/// An instant on the source server's clock as the incremental mode keeps it: microseconds since 1970-01-01 UTC,
/// written `YYYY-MM-DDTHH:MM:SS.ffffffZ` (the form the extractor writes for `extracted_at`, which compares in time
/// order as text). Arithmetic is exact, so a watermark minus a lookback is the same instant on every machine.
public struct Watermark: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Microseconds since the Unix epoch, UTC.
    public var microseconds: Int64

    public init(microseconds: Int64) {
        self.microseconds = microseconds
    }

    /// Reads `YYYY-MM-DDTHH:MM:SS.ffffffZ` (exactly six fraction digits, UTC); nil for anything else.
    public init?(_ text: String) {
        let bytes = Array(text.utf8)
        guard bytes.count == 27, RFC3339.isInstant(text), bytes[26] == UInt8(ascii: "Z"), bytes[19] == UInt8(ascii: ".") else {
            return nil
        }
        func number(_ range: Range<Int>) -> Int64 {
            bytes[range].reduce(0) { $0 * 10 + Int64($1 - 0x30) }
        }
        let days = Self.days(year: number(0..<4), month: number(5..<7), day: number(8..<10))
        let seconds = ((days * 24 + number(11..<13)) * 60 + number(14..<16)) * 60 + number(17..<19)
        microseconds = seconds * 1_000_000 + number(20..<26)
    }

    /// The instant `amount` microseconds earlier.
    public func minus(microseconds amount: Int64) -> Watermark {
        Watermark(microseconds: microseconds - amount)
    }

    public var description: String {
        let seconds = microseconds >= 0 ? microseconds / 1_000_000 : (microseconds - 999_999) / 1_000_000
        let fraction = microseconds - seconds * 1_000_000
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let time = seconds - days * 86_400
        let (year, month, day) = Self.civil(days: days)
        func padded(_ value: Int64, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(padded(year, 4))-\(padded(month, 2))-\(padded(day, 2))T\(padded(time / 3600, 2)):\(padded(time / 60 % 60, 2)):\(padded(time % 60, 2)).\(padded(fraction, 6))Z"
    }

    public static func < (lhs: Watermark, rhs: Watermark) -> Bool { lhs.microseconds < rhs.microseconds }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    private static func days(year: Int64, month: Int64, day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The date of a day count since 1970-01-01 (`civil_from_days`).
    private static func civil(days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
