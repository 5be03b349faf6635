import Foundation
import Logging
import StarpipeExtract

/// Shows `starpipe extract`'s progress: on a terminal, one line redrawn in place on standard error (table, rows,
/// rows/s, ETA, a bar when the source gives an estimate); otherwise a plain log line every 10 seconds.
final class ProgressDisplay {
    private let logger: Logger
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var lastLine = ContinuousClock.now

    init(logger: Logger) { self.logger = logger }

    func report(_ progress: ExtractProgress) {
        if isTerminal {
            var line = "[\(progress.tableIndex)/\(progress.tableCount)] \(progress.table)  \(Self.count(progress.rows))"
            if let estimate = progress.estimatedRows, estimate > 0 {
                let fraction = min(1, Double(progress.rows) / Double(estimate))
                let filled = Int(fraction * 20)
                line += " / ~\(Self.count(estimate)) rows [" + String(repeating: "#", count: filled)
                    + String(repeating: ".", count: 20 - filled) + "]"
            } else {
                line += " rows"
            }
            line += "  \(Self.count(Int64(progress.rowsPerSecond))) rows/s"
            if progress.finished { line += "  done\n" } else if let left = progress.secondsLeft { line += "  ETA \(Self.duration(left))" }
            FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
        } else if !progress.finished, ContinuousClock.now - lastLine >= .seconds(10) {
            lastLine = ContinuousClock.now
            logger.info("extracting table", metadata: [
                "starpipe.table": "\(progress.table)", "starpipe.rows": "\(progress.rows)",
                "starpipe.rows_per_second": "\(Int(progress.rowsPerSecond))",
                "starpipe.estimated_rows": "\(progress.estimatedRows.map(String.init) ?? "unknown")",
            ])
        }
    }

    /// `1,234,567`.
    static func count(_ value: Int64) -> String {
        let digits = Array(String(value))
        var text = ""
        for (index, digit) in digits.enumerated() {
            if index > 0, (digits.count - index) % 3 == 0 { text.append(",") }
            text.append(digit)
        }
        return text
    }

    /// `1:05:09`, `4:02`.
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded())
        let (hours, minutes, rest) = (total / 3600, total / 60 % 60, total % 60)
        let pad = { (value: Int) in value < 10 ? "0\(value)" : "\(value)" }
        return hours > 0 ? "\(hours):\(pad(minutes)):\(pad(rest))" : "\(minutes):\(pad(rest))"
    }
}
