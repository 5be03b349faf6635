import CopyEncoding
import JSONParsing
import Testing

/// Array and NDJSON forms, empty input, BOM, trailing data, non-object elements, truncation.
@Suite("Input forms")
struct InputFormTests {
    let columns = ["id", "name"]

    @Test func arrayOfObjects() throws {
        let out = try TestSupport.encode(#"[{"id":1,"name":"a"},{"id":2,"name":"b"}]"#, columns: columns)
        #expect(out == line("1", "a", "1") + line("2", "b", "2"))
    }

    @Test func arrayWithWhitespaceEverywhere() throws {
        let input = " \r\n\t[ \n{ \"id\" : 1 , \"name\" :\t\"a\" }\n,\n{\"id\":2,\"name\":\"b\"} ] \n\n"
        #expect(try TestSupport.encode(input, columns: columns) == line("1", "a", "1") + line("2", "b", "2"))
    }

    @Test func ndjson() throws {
        let input = "{\"id\":1,\"name\":\"a\"}\n{\"id\":2,\"name\":\"b\"}\n"
        #expect(try TestSupport.encode(input, columns: columns) == line("1", "a", "1") + line("2", "b", "2"))
    }

    @Test func ndjsonWithBlankLinesCRLFAndNoFinalNewline() throws {
        let input = "\n\n{\"id\":1,\"name\":\"a\"}\r\n\r\n  \n{\"id\":2,\"name\":\"b\"}"
        #expect(try TestSupport.encode(input, columns: columns) == line("1", "a", "1") + line("2", "b", "2"))
    }

    @Test func ndjsonObjectsMustBeSeparatedByWhitespace() {
        let error = TestSupport.encodeError(#"{"id":1,"name":"a"}{"id":2,"name":"b"}"#, columns: columns)
        #expect(error == JSONStreamError(code: .syntax, byteOffset: 19))
    }

    @Test func ndjsonRejectsCommas() {
        let error = TestSupport.encodeError("{\"id\":1,\"name\":\"a\"},\n{\"id\":2,\"name\":\"b\"}", columns: columns)
        #expect(error?.code == .syntax)
    }

    @Test func emptyArrayIsZeroRows() throws {
        var encoder = CopyRowEncoder(columns: columns)
        var output: [UInt8] = []
        try Array(" [ ] ".utf8).withUnsafeBytes { try encoder.feed($0, into: &output) }
        try encoder.finish(into: &output)
        #expect(output.isEmpty)
        #expect(encoder.rowCount == 0)
    }

    @Test func emptyInputIsUnexpectedEnd() {
        #expect(TestSupport.encodeError("", columns: columns) == JSONStreamError(code: .unexpectedEnd, byteOffset: 0))
        #expect(TestSupport.encodeError(" \n ", columns: columns) == JSONStreamError(code: .unexpectedEnd, byteOffset: 3))
    }

    @Test func byteOrderMarkIsRejected() {
        let input: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(#"[{"id":1,"name":"a"}]"#.utf8)
        #expect(TestSupport.encodeError(input, columns: columns) == JSONStreamError(code: .syntax, byteOffset: 0))
    }

    @Test func trailingDataAfterArray() {
        let error = TestSupport.encodeError(#"[{"id":1,"name":"a"}] x"#, columns: columns)
        #expect(error == JSONStreamError(code: .trailingData, byteOffset: 22))
        #expect(TestSupport.encodeError("[] []", columns: columns)?.code == .trailingData)
        #expect(TestSupport.encodeError("[]\n{}", columns: columns)?.code == .trailingData)
    }

    @Test func trailingWhitespaceAfterArrayIsFine() throws {
        #expect(try TestSupport.encode("[]\n\r\n\t ", columns: columns).isEmpty)
    }

    @Test func topLevelValueThatIsNotAnObject() {
        #expect(TestSupport.encodeError(#""id""#, columns: columns)
            == JSONStreamError(code: .notAnObject, row: 1, byteOffset: 0))
        #expect(TestSupport.encodeError("  42", columns: columns)
            == JSONStreamError(code: .notAnObject, row: 1, byteOffset: 2))
        #expect(TestSupport.encodeError("null", columns: columns)?.code == .notAnObject)
        #expect(TestSupport.encodeError("x", columns: columns) == JSONStreamError(code: .syntax, byteOffset: 0))
    }

    @Test func arrayElementThatIsNotAnObject() {
        let input = #"[{"id":1,"name":"a"}, [1]]"#
        #expect(TestSupport.encodeError(input, columns: columns)
            == JSONStreamError(code: .notAnObject, row: 2, byteOffset: 22))
        #expect(TestSupport.encodeError(#"[1]"#, columns: columns)
            == JSONStreamError(code: .notAnObject, row: 1, byteOffset: 1))
        #expect(TestSupport.encodeError(#"["x"]"#, columns: columns)?.code == .notAnObject)
    }

    @Test func ndjsonLineThatIsNotAnObject() {
        let input = "{\"id\":1,\"name\":\"a\"}\n[{\"id\":2,\"name\":\"b\"}]\n"
        #expect(TestSupport.encodeError(input, columns: columns)
            == JSONStreamError(code: .notAnObject, row: 2, byteOffset: 20))
    }

    @Test func arraySyntaxErrors() {
        #expect(TestSupport.encodeError(#"[{"id":1,"name":"a"},]"#, columns: columns)
            == JSONStreamError(code: .syntax, byteOffset: 21))
        #expect(TestSupport.encodeError(#"[{"id":1,"name":"a"} {"id":1,"name":"a"}]"#, columns: columns)?.code == .syntax)
        #expect(TestSupport.encodeError(#"[,]"#, columns: columns)?.code == .syntax)
    }

    @Test func truncatedInputIsUnexpectedEndOnFinish() throws {
        let cases: [(String, JSONStreamError)] = [
            ("[", JSONStreamError(code: .unexpectedEnd, byteOffset: 1)),
            (#"[{"id":1,"name":"a"}"#, JSONStreamError(code: .unexpectedEnd, byteOffset: 20)),
            (#"[{"id":1,"name":"a"},"#, JSONStreamError(code: .unexpectedEnd, byteOffset: 21)),
            (#"[{"id":1,"name":"a"},{"id":2"#, JSONStreamError(code: .unexpectedEnd, row: 2, column: "id", byteOffset: 28)),
            (#"{"id":1,"name":"a"#, JSONStreamError(code: .unexpectedEnd, row: 1, column: "name", byteOffset: 17)),
            (#"{"id":12"#, JSONStreamError(code: .unexpectedEnd, row: 1, column: "id", byteOffset: 8)),
            (#"{"id":tr"#, JSONStreamError(code: .unexpectedEnd, row: 1, column: "id", byteOffset: 8)),
            (#"{"id":1,"na"#, JSONStreamError(code: .unexpectedEnd, row: 1, byteOffset: 11)),
            (#"{"id":1,"name":"\u00"#, JSONStreamError(code: .unexpectedEnd, row: 1, column: "name", byteOffset: 20)),
        ]
        for (input, expected) in cases {
            // Feeding succeeds; only finish notices the document is incomplete.
            var encoder = CopyRowEncoder(columns: columns)
            var output: [UInt8] = []
            try Array(input.utf8).withUnsafeBytes { try encoder.feed($0, into: &output) }
            #expect(throws: expected, "\(input)") { try encoder.finish(into: &output) }
        }
    }

    @Test func rowsAreWrittenAsSoonAsTheyClose() throws {
        var encoder = CopyRowEncoder(columns: columns)
        var output: [UInt8] = []
        try Array(#"[{"id":1,"name":"a"},{"id":2,"#.utf8).withUnsafeBytes { try encoder.feed($0, into: &output) }
        #expect(String(decoding: output, as: UTF8.self) == line("1", "a", "1"))
        #expect(encoder.rowCount == 1)
        output.removeAll()
        try Array(#""name":"b"}]"#.utf8).withUnsafeBytes { try encoder.feed($0, into: &output) }
        try encoder.finish(into: &output)
        #expect(String(decoding: output, as: UTF8.self) == line("2", "b", "2"))
        #expect(encoder.rowCount == 2)
    }

    @Test func errorsAreSticky() throws {
        var encoder = CopyRowEncoder(columns: columns)
        var output: [UInt8] = []
        let bad = JSONStreamError(code: .syntax, row: 1, byteOffset: 2)
        #expect(throws: bad) { try Array("[{x".utf8).withUnsafeBytes { try encoder.feed($0, into: &output) } }
        #expect(throws: bad) { try Array("}]".utf8).withUnsafeBytes { try encoder.feed($0, into: &output) } }
        #expect(throws: bad) { try encoder.finish(into: &output) }
    }

    @Test func feedingAfterFinishIsTrailingData() throws {
        var encoder = CopyRowEncoder(columns: columns)
        var output: [UInt8] = []
        try Array("[]".utf8).withUnsafeBytes { try encoder.feed($0, into: &output) }
        try encoder.finish(into: &output)
        try encoder.finish(into: &output) // idempotent
        #expect(throws: JSONStreamError(code: .trailingData, byteOffset: 2)) {
            try Array(" ".utf8).withUnsafeBytes { try encoder.feed($0, into: &output) }
        }
    }

    @Test func emptyChunksAreIgnored() throws {
        var encoder = CopyRowEncoder(columns: ["id"])
        var output: [UInt8] = []
        try [UInt8]().withUnsafeBytes { try encoder.feed($0, into: &output) }
        try Array(#"{"id":1}"#.utf8).withUnsafeBytes { try encoder.feed($0, into: &output) }
        try [UInt8]().withUnsafeBytes { try encoder.feed($0, into: &output) }
        try encoder.finish(into: &output)
        #expect(String(decoding: output, as: UTF8.self) == line("1", "1"))
    }

    @Test func withoutRowNumbers() throws {
        let options = CopyRowEncoder.Options(appendRowNumber: false)
        let out = try TestSupport.encode(#"[{"id":1,"name":"a"},{"name":"b","id":2}]"#, columns: columns, options: options)
        #expect(out == line("1", "a") + line("2", "b"))
    }

    @Test func rowNumbersKeepCounting() throws {
        let input = String(repeating: "{\"id\":7}\n", count: 1234)
        let out = try TestSupport.encode(input, columns: ["id"])
        let lines = out.split(separator: "\n")
        #expect(lines.count == 1234)
        #expect(lines.last == "7\t1234")
        #expect(lines[99] == "7\t100")
    }
}
