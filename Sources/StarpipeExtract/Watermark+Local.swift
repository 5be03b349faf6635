import Foundation
import StarpipeCore

extension Watermark {
    /// The instant as wall-clock text in `zone`, `YYYY-MM-DD HH:MM:SS.ffffff` (no offset), for comparing with a
    /// zone-less timestamp column a source holds in that zone. The zone's rules come from this machine's tz database.
    func localText(in zone: String) throws -> String {
        guard let timeZone = TimeZone(identifier: zone) else {
            throw StarpipeError(.configuration, "time_zone \(zone) is not a time zone this machine knows (IANA names such as UTC or Europe/Paris)")
        }
        let seconds = microseconds >= 0 ? microseconds / 1_000_000 : (microseconds - 999_999) / 1_000_000
        let offset = Int64(timeZone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds))))
        return Watermark(microseconds: microseconds + offset * 1_000_000).sqlText
    }

    /// `YYYY-MM-DD HH:MM:SS.ffffff`, the instant in UTC without an offset.
    var sqlText: String {
        String(description.dropLast().map { $0 == "T" ? " " : $0 })
    }
}
