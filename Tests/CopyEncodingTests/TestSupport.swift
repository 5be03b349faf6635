import CopyEncoding
import JSONParsing

/// Helpers shared by the encoder tests.
enum TestSupport {
    /// Encodes `input` fed as one chunk (or in the given chunk sizes, cycling) and finished.
    static func encode(
        _ input: [UInt8],
        columns: [String],
        base64Columns: Set<String> = [],
        options: CopyRowEncoder.Options = .init(),
        chunkSizes: [Int] = []
    ) throws(JSONStreamError) -> String {
        let bytes = try encodeBytes(input, columns: columns, base64Columns: base64Columns, options: options, chunkSizes: chunkSizes)
        return String(decoding: bytes, as: UTF8.self)
    }

    static func encode(
        _ input: String,
        columns: [String],
        base64Columns: Set<String> = [],
        options: CopyRowEncoder.Options = .init(),
        chunkSizes: [Int] = []
    ) throws(JSONStreamError) -> String {
        try encode(Array(input.utf8), columns: columns, base64Columns: base64Columns, options: options, chunkSizes: chunkSizes)
    }

    /// Like `encode` but returns raw output bytes.
    static func encodeBytes(
        _ input: [UInt8],
        columns: [String],
        base64Columns: Set<String> = [],
        options: CopyRowEncoder.Options = .init(),
        chunkSizes: [Int] = []
    ) throws(JSONStreamError) -> [UInt8] {
        var encoder = CopyRowEncoder(columns: columns, base64Columns: base64Columns, options: options)
        var output: [UInt8] = []
        var position = 0
        var which = 0
        while position < input.count {
            let size = chunkSizes.isEmpty ? input.count : max(1, chunkSizes[which % chunkSizes.count])
            which += 1
            let end = min(input.count, position + size)
            let chunk = Array(input[position ..< end])
            let failure: JSONStreamError? = chunk.withUnsafeBytes { buffer -> JSONStreamError? in
                do throws(JSONStreamError) {
                    try encoder.feed(buffer, into: &output)
                    return nil
                } catch {
                    return error
                }
            }
            if let failure {
                throw failure
            }
            position = end
        }
        try encoder.finish(into: &output)
        return output
    }

    /// The error thrown while encoding, or `nil` if encoding succeeded.
    static func encodeError(
        _ input: [UInt8],
        columns: [String],
        base64Columns: Set<String> = [],
        options: CopyRowEncoder.Options = .init(),
        chunkSizes: [Int] = []
    ) -> JSONStreamError? {
        do {
            _ = try encodeBytes(input, columns: columns, base64Columns: base64Columns, options: options, chunkSizes: chunkSizes)
            return nil
        } catch {
            return error
        }
    }

    static func encodeError(
        _ input: String,
        columns: [String],
        base64Columns: Set<String> = [],
        options: CopyRowEncoder.Options = .init(),
        chunkSizes: [Int] = []
    ) -> JSONStreamError? {
        encodeError(Array(input.utf8), columns: columns, base64Columns: base64Columns, options: options, chunkSizes: chunkSizes)
    }

    /// The error thrown by `JSONValidator.validate`, or `nil`.
    static func validationError(_ input: [UInt8], maxDepth: Int = 512) -> JSONStreamError? {
        input.withUnsafeBytes { buffer -> JSONStreamError? in
            do throws(JSONStreamError) {
                try JSONValidator.validate(buffer, maxDepth: maxDepth)
                return nil
            } catch {
                return error
            }
        }
    }
}

/// A small deterministic random number generator (SplitMix64) for seeded tests.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One expected COPY line: the fields joined by TAB, plus a newline.
func line(_ fields: String...) -> String {
    fields.joined(separator: "\t") + "\n"
}
