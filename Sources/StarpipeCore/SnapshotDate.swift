/// A calendar date of a snapshot, written `YYYY-MM-DD` in manifests and `YYYYMMDD` in bucket keys.
public struct SnapshotDate: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let year: Int
    public let month: Int
    public let day: Int

    /// Parses `YYYY-MM-DD`.
    public init?(iso: String) {
        let parts = iso.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let year = Int(parts[0]), let month = Int(parts[1]), let day = Int(parts[2]) else { return nil }
        self.init(year: year, month: month, day: day)
    }

    /// Parses `YYYYMMDD` (structured keys) or, with `dayFirst`, `DDMMYYYY` (flat keys).
    public init?(compact: String, dayFirst: Bool = false) {
        guard compact.count == 8, compact.allSatisfy(\.isASCII), compact.allSatisfy(\.isNumber) else { return nil }
        let digits = Array(compact)
        func number(_ range: Range<Int>) -> Int { Int(String(digits[range]))! }
        if dayFirst {
            self.init(year: number(4..<8), month: number(2..<4), day: number(0..<2))
        } else {
            self.init(year: number(0..<4), month: number(4..<6), day: number(6..<8))
        }
    }

    /// A date from its parts; nil unless it is a real calendar date.
    public init?(year: Int, month: Int, day: Int) {
        guard (1...9999).contains(year), (1...12).contains(month), day >= 1 else { return nil }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let lengths = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
        guard day <= lengths[month - 1] else { return nil }
        self.year = year
        self.month = month
        self.day = day
    }

    /// `YYYY-MM-DD`.
    public var iso: String { "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))" }
    /// `YYYYMMDD`.
    public var compact: String { "\(pad(year, 4))\(pad(month, 2))\(pad(day, 2))" }
    public var description: String { iso }

    public static func < (lhs: SnapshotDate, rhs: SnapshotDate) -> Bool {
        (lhs.year, lhs.month, lhs.day) < (rhs.year, rhs.month, rhs.day)
    }

    private func pad(_ value: Int, _ width: Int) -> String {
        let text = String(value)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}
