import CopyEncoding
import Foundation
import JSONParsing
import Testing

/// Columns the manifest marks `"encoding": "base64"`: canonical base64 lands as bytea's hex input, null as NULL,
/// anything else is `invalidBase64` naming the row and column.
@Suite("Base64 columns")
struct Base64ColumnTests {
    let columns = ["id", "data"]

    /// The COPY line for `{"id": 1, "data": <data>}` with `data` a base64 column.
    private func line(_ data: String, chunkSizes: [Int] = []) throws(JSONStreamError) -> String {
        try TestSupport.encode(#"{"id":1,"data":\#(data)}"#, columns: columns, base64Columns: ["data"], chunkSizes: chunkSizes)
    }

    @Test func decodesEachPaddingIntoHex() throws {
        #expect(try line(#""AAEC/w==""#) == "1\t\\\\x000102ff\t1\n")
        #expect(try line(#""/w==""#) == "1\t\\\\xff\t1\n")
        #expect(try line(#""//8=""#) == "1\t\\\\xffff\t1\n")
        #expect(try line(#""////""#) == "1\t\\\\xffffff\t1\n")
        #expect(try line(#""+/+/""#) == "1\t\\\\xfbffbf\t1\n")
    }

    @Test func agreesWithFoundationOnRandomBytes() throws {
        var generator = SeededGenerator(seed: 13)
        for length in 0 ..< 70 {
            let bytes = (0 ..< length).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
            let hex = bytes.map { String(format: "%02x", $0) }.joined()
            // Split anywhere, including inside the string: the result does not depend on the chunks.
            #expect(try line("\"\(Data(bytes).base64EncodedString())\"", chunkSizes: [1, 3, 7]) == "1\t\\\\x\(hex)\t1\n", "\(length)")
        }
    }

    @Test func emptyIsNoBytesAndNullIsNull() throws {
        #expect(try line(#""""#) == "1\t\\\\x\t1\n")
        #expect(try line("null") == "1\t\\N\t1\n")
    }

    @Test func refusesWhatIsNotCanonicalBase64() {
        let refused = [
            #""AAE""#, #""A""#, #""AAECAw""#,          // not a multiple of 4 (padding left out)
            #""AA=E""#, #""A===""#, #""====""#, #""AA==AAAA""#, // = inside, too many, or before the end
            #""AAE-""#, #""AAE_""#, #""AA E""#, #""AAE\n""#,    // url-safe alphabet, whitespace, an escaped newline
            #""/x==""#, #""//9=""#,                             // unused bits set: not the one form of those bytes
            #""\u00e9AAA""#, #""AAE\\""#,                       // non-ASCII, a backslash
            "12", "true", "[1]", #"{"a":"AAAA"}"#,              // not a string
        ]
        for value in refused {
            #expect(TestSupport.encodeError(#"{"id":1,"data":\#(value)}"#, columns: columns, base64Columns: ["data"])
                == JSONStreamError(code: .invalidBase64, row: 1, column: "data", byteOffset: 15), "\(value)")
        }
    }

    @Test func namesTheRowAndTheColumnInAnyKeyOrder() {
        let input = """
            [{"id":1,"data":"AAAA"},
             {"data":"AA*A","id":2}]
            """
        #expect(TestSupport.encodeError(input, columns: columns, base64Columns: ["data"])
            == JSONStreamError(code: .invalidBase64, row: 2, column: "data", byteOffset: 34))
        #expect(TestSupport.encodeError(input, columns: columns, base64Columns: ["data"])?.description
            == #"row 2, column "data": invalid base64 at byte 34"#)
    }

    @Test func outOfOrderKeysAndOtherColumnsAreUntouched() throws {
        let output = try TestSupport.encode(#"{"data":"AQI=","id":"AQI="}"#, columns: columns, base64Columns: ["data"])
        #expect(output == "AQI=\t\\\\x0102\t1\n")
    }

    @Test func theHexCountsAgainstTheValueLimit() {
        // 12 bytes of base64 are 9 bytes, 21 bytes of COPY text.
        let options = CopyRowEncoder.Options(maxValueBytes: 20)
        #expect(TestSupport.encodeError(#"{"id":1,"data":"AAAAAAAAAAAA"}"#, columns: columns, base64Columns: ["data"], options: options)
            == JSONStreamError(code: .valueTooLarge, row: 1, column: "data", byteOffset: 15))
    }
}
