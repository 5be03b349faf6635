import CopyEncoding
import JSONParsing
import Testing

/// Error codes, descriptions, and the guarantee that no value bytes (PHI) leak into them.
@Suite("Error reporting")
struct ErrorReportingTests {
    let secret = "SECRET-PHI"

    @Test func descriptionFormat() {
        let error = JSONStreamError(code: .invalidUTF8, row: 12, column: "BIRTHDATE", byteOffset: 5123)
        #expect(error.description == #"row 12, column "BIRTHDATE": invalid UTF-8 at byte 5123"#)
        #expect(error.debugDescription == #"JSONStreamError(code: invalidUTF8, row: 12, column: "BIRTHDATE", byteOffset: 5123)"#)
        #expect(JSONStreamError(code: .trailingData, byteOffset: 7).description == "trailing data after the document at byte 7")
        #expect(JSONStreamError(code: .syntax, row: 3, byteOffset: 9).description == "row 3: syntax error at byte 9")
        #expect(JSONStreamError(code: .unknownColumn, row: 1, column: "a\"b\u{1}", byteOffset: 0).description
            == #"row 1, column "a\"b\u0001": unknown column at byte 0"#)
    }

    @Test func codesHaveStableNames() {
        let codes: [JSONStreamError.Code] = [
            .syntax, .unexpectedEnd, .invalidUTF8, .loneSurrogate, .nulCharacter, .depthExceeded,
            .valueTooLarge, .notAnObject, .unknownColumn, .missingColumn, .duplicateColumn, .trailingData,
        ]
        #expect(codes.map(\.description) == [
            "syntax", "unexpectedEnd", "invalidUTF8", "loneSurrogate", "nulCharacter", "depthExceeded",
            "valueTooLarge", "notAnObject", "unknownColumn", "missingColumn", "duplicateColumn", "trailingData",
        ])
        #expect(Set(codes).count == codes.count)
    }

    /// Inputs that fail while or right after reading a value that contains the secret.
    var failingInputs: [[UInt8]] {
        let s = secret
        return [
            Array("{\"v\":\"\(s)".utf8) + [0xFF] + Array("\"}".utf8), // invalid UTF-8
            Array("{\"v\":\"\(s)\\ud800\"}".utf8), // lone surrogate
            Array("{\"v\":\"\(s)\\u0000\"}".utf8), // NUL
            Array("{\"v\":\"\(s)\\q\"}".utf8), // bad escape
            Array("{\"v\":\"\(s)\n\"}".utf8), // raw control character
            Array("{\"v\":\"\(s)\"".utf8), // truncated
            Array("{\"v\":\"\(s)\" x}".utf8), // syntax after value
            Array("{\"v\":[\"\(s)\",]}".utf8), // nested syntax
            Array("{\"v\":\"\(s)\(s)\(s)\"}".utf8), // too large (see options)
            Array("{\"v\":\"\(s)\",\"w\":1}".utf8), // unknown column after the secret
            Array("{\"v\":\"\(s)\",\"v\":1}".utf8), // duplicate
            Array("{\"v\":\"\(s)\"}\n\"\(s)\"".utf8), // not an object
            Array("[{\"v\":\"\(s)\"}] \(s)".utf8), // trailing data
            Array("{\"v\":\"\(s)\",\"u\":1}".utf8), // unknown column
            Array("{\"v\":[[[[\"\(s)\"]]]]}".utf8), // depth
        ]
    }

    @Test func descriptionsNeverContainValueBytes() {
        let options = CopyRowEncoder.Options(maxDepth: 3, maxValueBytes: 20)
        for (index, input) in failingInputs.enumerated() {
            for chunkSizes in [[], [1], [3, 5]] {
                guard let error = TestSupport.encodeError(input, columns: ["v"], options: options, chunkSizes: chunkSizes) else {
                    Issue.record("input \(index) did not fail")
                    continue
                }
                #expect(!error.description.contains("SECRET"), "input \(index): \(error.description)")
                #expect(!error.debugDescription.contains("SECRET"), "input \(index): \(error.debugDescription)")
                #expect(!String(describing: error).contains("SECRET"))
            }
        }
    }

    @Test func validatorErrorsNeverContainValueBytes() {
        for input in failingInputs {
            if let error = TestSupport.validationError(input, maxDepth: 3) {
                #expect(!error.description.contains("SECRET"))
            }
        }
    }

    @Test func errorsInValuesNameTheColumnAndRow() {
        let columns = ["id", "BIRTHDATE"]
        let input = Array("{\"id\":1,\"BIRTHDATE\":\"x\"}\n{\"id\":2,\"BIRTHDATE\":\"19".utf8) + [0xC3, 0x28] + Array("\"}".utf8)
        let error = TestSupport.encodeError(input, columns: columns)
        #expect(error == JSONStreamError(code: .invalidUTF8, row: 2, column: "BIRTHDATE", byteOffset: 48))
        #expect(error?.description == #"row 2, column "BIRTHDATE": invalid UTF-8 at byte 48"#)
    }
}
