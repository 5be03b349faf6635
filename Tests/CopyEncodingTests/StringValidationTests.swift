import CopyEncoding
import JSONParsing
import Testing

/// UTF-8 well-formedness, surrogate escapes and NUL, in values, keys and the validator.
@Suite("String validation")
struct StringValidationTests {
    /// `{"v":"ab<bytes>cd"}`: the bytes start at offset 8.
    func valueWith(_ bytes: [UInt8]) -> [UInt8] {
        Array(#"{"v":"ab"#.utf8) + bytes + Array(#"cd"}"#.utf8)
    }

    @Test func wellFormedUTF8PassesThrough() throws {
        let samples: [[UInt8]] = [
            [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF], [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF],
            [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF], [0xF3, 0xBF, 0xBF, 0xBF],
        ]
        for sample in samples {
            let out = try TestSupport.encodeBytes(valueWith(sample), columns: ["v"], options: .init(appendRowNumber: false))
            #expect(out == Array("ab".utf8) + sample + Array("cd\n".utf8), "\(sample)")
        }
    }

    @Test func malformedUTF8IsRejected() {
        let samples: [(String, [UInt8])] = [
            ("lone continuation", [0x80]),
            ("continuation 0xBF", [0xBF]),
            ("overlong 2-byte C0", [0xC0, 0x80]),
            ("overlong 2-byte C1", [0xC1, 0xBF]),
            ("overlong 3-byte", [0xE0, 0x80, 0x80]),
            ("overlong 3-byte 9F", [0xE0, 0x9F, 0xBF]),
            ("overlong 4-byte", [0xF0, 0x80, 0x80, 0x80]),
            ("encoded surrogate D800", [0xED, 0xA0, 0x80]),
            ("encoded surrogate DFFF", [0xED, 0xBF, 0xBF]),
            ("above U+10FFFF", [0xF4, 0x90, 0x80, 0x80]),
            ("F5 lead", [0xF5, 0x80, 0x80, 0x80]),
            ("FF", [0xFF]),
            ("FE", [0xFE]),
            ("5-byte form", [0xF8, 0x88, 0x80, 0x80, 0x80]),
            ("truncated 2-byte", [0xC3]),
            ("truncated 3-byte", [0xE2, 0x82]),
            ("truncated 4-byte", [0xF0, 0x9F, 0x98]),
            ("missing continuation", [0xC3, 0x41]),
            ("latin-1", [0xE9]),
        ]
        for (name, sample) in samples {
            for chunkSizes in [[], [1], [9], [10], [11]] {
                let error = TestSupport.encodeError(valueWith(sample), columns: ["v"], chunkSizes: chunkSizes)
                #expect(error == JSONStreamError(code: .invalidUTF8, row: 1, column: "v", byteOffset: 8), "\(name) \(chunkSizes)")
            }
            #expect(TestSupport.validationError(Array("[\"ab".utf8) + sample + Array("\"]".utf8))?.code == .invalidUTF8, "\(name)")
        }
    }

    @Test func truncatedSequenceAtEndOfString() {
        // The closing quote is not a continuation byte.
        #expect(TestSupport.encodeError(Array(#"{"v":""#.utf8) + [0xE2, 0x82] + Array(#""}"#.utf8), columns: ["v"])
            == JSONStreamError(code: .invalidUTF8, row: 1, column: "v", byteOffset: 6))
    }

    @Test func nonASCIIOutsideStringsIsSyntax() {
        #expect(TestSupport.encodeError(Array(#"{"v":"#.utf8) + [0xC3, 0xA9] + Array("}".utf8), columns: ["v"])?.code == .syntax)
        #expect(TestSupport.validationError([0x5B, 0xC3, 0xA9, 0x5D])?.code == .syntax)
    }

    @Test func invalidUTF8InKeys() {
        let input = Array(#"{"a"#.utf8) + [0xC0, 0x80] + Array(#"":1}"#.utf8)
        #expect(TestSupport.encodeError(input, columns: ["v"]) == JSONStreamError(code: .invalidUTF8, row: 1, byteOffset: 3))
    }

    @Test func loneSurrogates() {
        let cases: [(String, Int)] = [
            (#""ab\ud800""#, 8),
            (#""ab\uD800cd""#, 8),
            (#""ab\udc00""#, 8),
            (#""ab\uDFFF\uD800""#, 8),
            (#""ab\ud800\u0041""#, 8),
            (#""ab\ud800\ud800""#, 8),
            (#""ab\ud800\n""#, 8),
            (#""ab\ude00\ud83d""#, 8),
            (#""ab\u0041\udc00""#, 14),
        ]
        for (json, offset) in cases {
            for chunkSizes in [[], [1], [2, 3]] {
                let error = TestSupport.encodeError("{\"v\":\(json)}", columns: ["v"], chunkSizes: chunkSizes)
                #expect(error == JSONStreamError(code: .loneSurrogate, row: 1, column: "v", byteOffset: offset), "\(json)")
            }
            #expect(TestSupport.validationError(Array(json.utf8))?.code == .loneSurrogate, "\(json)")
        }
        #expect(TestSupport.encodeError(#"{"\udc00":1}"#, columns: ["v"])?.code == .loneSurrogate)
    }

    @Test func nulCharacter() {
        #expect(TestSupport.encodeError(#"{"v":"ab\u0000"}"#, columns: ["v"])
            == JSONStreamError(code: .nulCharacter, row: 1, column: "v", byteOffset: 8))
        #expect(TestSupport.encodeError(#"{"v":{"k":"\u0000"}}"#, columns: ["v"])?.code == .nulCharacter)
        #expect(TestSupport.encodeError(#"{"v\u0000":1}"#, columns: ["v"])?.code == .nulCharacter)
        // Other control characters are fine when escaped.
        #expect(TestSupport.encodeError(#"{"v":"\u0001"}"#, columns: ["v"]) == nil)
    }

    @Test func validatorAcceptsNULEscape() {
        // \u0000 is valid JSON; only the COPY encoder rejects it.
        #expect(TestSupport.validationError(Array(#"["\u0000"]"#.utf8)) == nil)
    }
}
