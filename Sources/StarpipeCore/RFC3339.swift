/// RFC 3339 date-times as the manifest's `extracted_at` needs them: an instant with an explicit offset,
/// so no reader's time zone is involved (`2026-11-01T08:00:00.123456Z`, `2026-11-01T09:00:00+01:00`).
/// The extension applies the same rule at registration.
public enum RFC3339 {
    /// True for `YYYY-MM-DDTHH:MM:SS[.fraction]` followed by `Z` or `±HH:MM`, with a real calendar date.
    /// Special words (`now`, `infinity`), epoch numbers, a missing offset and RFC 9557 suffixes are refused.
    public static func isInstant(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        var index = 0
        func digits(_ count: Int) -> Int? {
            guard index + count <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[index..<(index + count)] {
                guard byte >= 0x30, byte <= 0x39 else { return nil }
                value = value * 10 + Int(byte - 0x30)
            }
            index += count
            return value
        }
        func expect(_ characters: String) -> Bool {
            guard index < bytes.count, characters.utf8.contains(bytes[index]) else { return false }
            index += 1
            return true
        }
        guard let year = digits(4), expect("-"), let month = digits(2), expect("-"), let day = digits(2),
              expect("Tt"), let hour = digits(2), expect(":"), let minute = digits(2), expect(":"), let second = digits(2),
              SnapshotDate(year: year, month: month, day: day) != nil, hour <= 23, minute <= 59, second <= 60 else {
            return false
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            let start = index
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 { index += 1 }
            guard (1...9).contains(index - start) else { return false }
        }
        if expect("Zz") { return index == bytes.count }
        guard expect("+-"), let offsetHours = digits(2), expect(":"), let offsetMinutes = digits(2) else { return false }
        return offsetHours <= 15 && offsetMinutes <= 59 && index == bytes.count
    }
}
