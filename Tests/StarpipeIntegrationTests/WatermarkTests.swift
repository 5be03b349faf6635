import Foundation
import StarpipeExtract
import Testing

/// Watermarks: exact microsecond arithmetic on the text the extractor writes.
@Suite("Watermark")
struct WatermarkTests {
    @Test("reads and writes RFC 3339 UTC with microseconds, agreeing with Foundation's calendar, before 1970 too")
    func roundTrip() throws {
        for text in ["1970-01-01T00:00:00.000000Z", "2026-12-04T01:24:58.119948Z", "2024-02-29T23:59:59.999999Z",
                     "1969-12-31T23:59:59.999999Z", "1900-03-01T12:00:00.000001Z", "0001-01-01T00:00:00.000000Z"] {
            let mark = try #require(Watermark(text))
            #expect(mark.description == text)
        }
        let formatter = ISO8601DateFormatter()
        for seconds in stride(from: Int64(-4_000_000_000), to: 4_000_000_000, by: 86_399_937) {
            let mark = Watermark(microseconds: seconds * 1_000_000 + 250_000)
            let expected = formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))).dropLast() + ".250000Z"
            #expect(mark.description == expected)
            #expect(Watermark(mark.description) == mark)
        }
        #expect(Watermark("2026-01-01T00:00:00.000000Z")!.minus(microseconds: 1).description == "2025-12-31T23:59:59.999999Z")
        #expect(Watermark("2026-03-01T00:10:00.000000Z")!.minus(microseconds: 600_000_000).description == "2026-03-01T00:00:00.000000Z")
        for bad in ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00.000000+01:00", "2026-02-30T00:00:00.000000Z", "now", ""] {
            #expect(Watermark(bad) == nil, "\(bad)")
        }
    }
}
