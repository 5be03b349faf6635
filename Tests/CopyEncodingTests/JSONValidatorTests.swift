import CopyEncoding
import JSONParsing
import Testing

/// `JSONValidator` on hand-written documents (the conformance suite covers the rest).
@Suite("JSONValidator")
struct JSONValidatorTests {
    func error(_ text: String, maxDepth: Int = 512) -> JSONStreamError? {
        TestSupport.validationError(Array(text.utf8), maxDepth: maxDepth)
    }

    @Test func acceptsAnyTopLevelValue() {
        for text in ["{}", "[]", "\"\"", "0", "-1.5e3", "true", "false", "null", " \n\t\r[1, {\"a\": [null]}] \n",
                     "\"\\u0000\"", "1e99999", "\"\u{1F600}\"", "123456789012345678901234567890"] {
            #expect(error(text) == nil, "\(text)")
        }
    }

    @Test func emptyAndWhitespaceOnly() {
        #expect(error("") == JSONStreamError(code: .unexpectedEnd, byteOffset: 0))
        #expect(error("  \n") == JSONStreamError(code: .unexpectedEnd, byteOffset: 3))
    }

    @Test func truncatedDocuments() {
        for text in ["[", "{", "{\"a\"", "{\"a\":", "[1,", "\"abc", "tru", "-", "1.", "1e", "[\"\\u12"] {
            #expect(error(text)?.code == .unexpectedEnd, "\(text)")
        }
    }

    @Test func trailingData() {
        #expect(error("[] x") == JSONStreamError(code: .trailingData, byteOffset: 3))
        #expect(error("1 2") == JSONStreamError(code: .trailingData, byteOffset: 2))
        #expect(error("{}{}") == JSONStreamError(code: .trailingData, byteOffset: 2))
        #expect(error("nullx") == JSONStreamError(code: .trailingData, byteOffset: 4))
    }

    @Test func syntaxErrorsHaveOffsets() {
        #expect(error("[1,]") == JSONStreamError(code: .syntax, byteOffset: 3))
        #expect(error("{\"a\" 1}") == JSONStreamError(code: .syntax, byteOffset: 5))
        #expect(error("[01]") == JSONStreamError(code: .syntax, byteOffset: 2))
        #expect(error("\u{FEFF}{}") == JSONStreamError(code: .syntax, byteOffset: 0)) // BOM
    }

    @Test func depthLimit() {
        #expect(error("[[[]]]", maxDepth: 3) == nil)
        #expect(error("[[[[]]]]", maxDepth: 3) == JSONStreamError(code: .depthExceeded, byteOffset: 3))
        #expect(error("{\"a\":{\"b\":{}}}", maxDepth: 2) == JSONStreamError(code: .depthExceeded, byteOffset: 10))
    }
}
