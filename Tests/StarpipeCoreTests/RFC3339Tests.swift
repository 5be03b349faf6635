import StarpipeCore
import Testing

/// extracted_at orders snapshots of one date, so it must be an instant that no reader's time zone can change.
@Suite("RFC 3339 instants")
struct RFC3339Tests {
    @Test("instants with an explicit offset are accepted", arguments: [
        "2026-01-01T08:00:00Z", "2026-01-01T09:00:00.123456+01:00", "2026-01-01t08:00:00z", "2024-02-29T23:59:59.999999999-05:30",
        "1999-12-31T23:59:60Z",
    ])
    func accepted(_ text: String) {
        #expect(RFC3339.isInstant(text))
    }

    @Test("anything else is refused", arguments: [
        "2026-01-01T20:00:00Z[UTC]", "2026-01-01T08:00:00", "2026-01-01 08:00:00Z", "now", "infinity", "1767225600",
        "2026-02-30T08:00:00Z", "2026-01-01T25:00:00Z", "2026-01-01T08:00:00.Z", "2026-01-01T08:00:00+1:00", "",
        "2026-01-01T08:00:00.1234567890Z", "2026-01-01T08:00:00+16:00",
    ])
    func refused(_ text: String) {
        #expect(!RFC3339.isInstant(text))
    }
}
