import CopyEncoding
import Testing

/// The binary transcoder on its own; that its output equals text COPY is proven against Postgres in
/// the integration tests (CopyFormatTests).
@Suite("Binary COPY transcoder")
struct BinaryCopyTranscoderTests {
    private func transcode(_ json: String, columns: [String], types: [BinaryCopyType]) throws -> [UInt8] {
        var encoder = CopyRowEncoder(columns: columns)
        var text: [UInt8] = []
        let bytes = Array(json.utf8)
        try bytes.withUnsafeBytes { try encoder.feed($0, into: &text) }
        try encoder.finish(into: &text)
        var transcoder = BinaryCopyTranscoder(types: types)
        var binary: [UInt8] = []
        try transcoder.transcode(text, into: &binary)
        return binary
    }

    @Test("numeric becomes base-10000 digits with weight, sign and display scale")
    func numeric() throws {
        let binary = try transcode(#"[{"n":28111.03},{"n":-0.000100},{"n":0.00}]"#, columns: ["n"], types: [.numeric])
        // Row 1: 2 fields; n = 8 + 3*2 bytes: ndigits 3, weight 1, sign +, dscale 2, digits 2, 8111, 300.
        let first: [UInt8] = [0, 2, 0, 0, 0, 14, 0, 3, 0, 1, 0, 0, 0, 2, 0, 2, 0x1F, 0xAF, 0x01, 0x2C]
        #expect(Array(binary.prefix(first.count)) == first)
        // Row 2: -0.000100 → one digit 1 (0.0001) at weight -1, negative, dscale 6.
        let secondStart = first.count + 12
        let second: [UInt8] = [0, 2, 0, 0, 0, 10, 0, 1, 0xFF, 0xFF, 0x40, 0x00, 0, 6, 0, 1]
        #expect(Array(binary[secondStart..<(secondStart + second.count)]) == second)
        // Row 3: zero keeps its scale and has no digits.
        let thirdStart = secondStart + second.count + 12
        #expect(Array(binary[thirdStart..<(thirdStart + 14)]) == [0, 2, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 2])
    }

    @Test("dates and timestamps count from 2000-01-01; offsets are applied")
    func time() throws {
        let binary = try transcode(#"[{"d":"2000-01-02","t":"2000-01-01T01:00:00+01:00"}]"#, columns: ["d", "t"], types: [.date, .timestamptz])
        #expect(Array(binary[6..<10]) == [0, 0, 0, 1])
        #expect(Array(binary[14..<22]) == [0, 0, 0, 0, 0, 0, 0, 0])
    }

    @Test("non-canonical values are refused, so the load falls back to text", arguments: [
        (#"[{"v":"2024-1-5"}]"#, BinaryCopyType.date),
        (#"[{"v":"2024-01-05 10:00:00"}]"#, .timestamptz),
        (#"[{"v":"2024-01-05T10:00:00Z"}]"#, .timestamp),
        (#"[{"v":1.5e3}]"#, .numeric),
        (#"[{"v":"yes"}]"#, .boolean),
        (#"[{"v":"{3eb13b90-4668-4257-bdd6-40fb06671ad1}"}]"#, .uuid),
        (#"[{"v":2147483648}]"#, .int4),
        (#"[{"v":"1e400"}]"#, .float8),
        (#"[{"v":1.5}]"#, .int8),
    ])
    func refused(json: String, type: BinaryCopyType) {
        #expect(throws: BinaryCopyTranscoder.NotCanonical.self) {
            _ = try transcode(json, columns: ["v"], types: [type])
        }
    }

    @Test("canonical values of every type are encoded", arguments: [
        (#"[{"v":"3EB13B90-4668-4257-BDD6-40FB06671AD1"}]"#, BinaryCopyType.uuid),
        (#"[{"v":"9999-12-31"}]"#, .date),
        (#"[{"v":"2020-02-29T23:59:59.999999Z"}]"#, .timestamptz),
        (#"[{"v":"1970-01-01 00:00:00"}]"#, .timestamp),
        (#"[{"v":-9223372036854775808}]"#, .int8),
        (#"[{"v":"NaN"}]"#, .float4),
        (#"[{"v":{"a":[1,"x\ty"]}}]"#, .jsonb),
        (#"[{"v":true}]"#, .boolean),
        (#"[{"v":null}]"#, .uuid),
    ])
    func encoded(json: String, type: BinaryCopyType) throws {
        #expect(try !transcode(json, columns: ["v"], types: [type]).isEmpty)
    }
}
