import CopyEncoding
import JSONParsing
import Testing

/// Keys against the expected columns: unknown, missing, duplicate; escaped and non-ASCII keys.
@Suite("Columns")
struct ColumnErrorTests {
    let columns = ["id", "name", "BIRTHDATE"]

    @Test func missingColumnNamesTheFirstMissingInColumnOrder() {
        let input = """
            [{"id":1,"name":"a","BIRTHDATE":"2000-01-01"},
             {"BIRTHDATE":"2000-01-02"}]
            """
        #expect(TestSupport.encodeError(input, columns: columns)
            == JSONStreamError(code: .missingColumn, row: 2, column: "id", byteOffset: 73))
        #expect(TestSupport.encodeError(#"{"id":1}"#, columns: columns)
            == JSONStreamError(code: .missingColumn, row: 1, column: "name", byteOffset: 7))
        #expect(TestSupport.encodeError(#"{}"#, columns: columns)
            == JSONStreamError(code: .missingColumn, row: 1, column: "id", byteOffset: 1))
    }

    @Test func unknownColumn() {
        let input = "{\"id\":1,\"name\":\"a\",\"BIRTHDATE\":null}\n{\"id\":2,\"Name\":\"b\",\"BIRTHDATE\":null}\n"
        #expect(TestSupport.encodeError(input, columns: columns)
            == JSONStreamError(code: .unknownColumn, row: 2, column: "Name", byteOffset: 45))
    }

    @Test func unknownColumnIsCaseSensitiveAndExact() {
        for key in ["ID", "id ", " id", "i", "idd", "birthdate", ""] {
            let error = TestSupport.encodeError("{\"\(key)\":1}", columns: columns)
            #expect(error == JSONStreamError(code: .unknownColumn, row: 1, column: key, byteOffset: 1), "\(key)")
        }
    }

    @Test func unknownColumnNameIsTruncatedTo64BytesAtACharacterBoundary() {
        let ascii = String(repeating: "k", count: 200)
        #expect(TestSupport.encodeError("{\"\(ascii)\":1}", columns: columns)?.column == String(repeating: "k", count: 64))
        // 63 ASCII bytes then a 2-byte character: cutting at 64 would split it.
        let split = String(repeating: "k", count: 63) + "\u{E9}xyz"
        #expect(TestSupport.encodeError("{\"\(split)\":1}", columns: columns)?.column == String(repeating: "k", count: 63))
        // A key with escapes is reported decoded.
        let escaped = TestSupport.encodeError(#"{"a\u00e9\n":1}"#, columns: columns)
        #expect(escaped == JSONStreamError(code: .unknownColumn, row: 1, column: "a\u{E9}\n", byteOffset: 1))
        #expect(escaped?.description == #"row 1, column "aé\n": unknown column at byte 1"#)
        // Very long escaped keys are not kept whole.
        let longEscaped = String(repeating: #"\u0041"#, count: 10_000)
        #expect(TestSupport.encodeError("{\"\(longEscaped)\":1}", columns: columns)?.column == String(repeating: "A", count: 64))
    }

    @Test func duplicateColumn() {
        let input = #"[{"id":1,"name":"a","BIRTHDATE":null},{"id":2,"name":"b","id":3,"BIRTHDATE":null}]"#
        #expect(TestSupport.encodeError(input, columns: columns)
            == JSONStreamError(code: .duplicateColumn, row: 2, column: "id", byteOffset: 57))
        // Written differently but decoding to the same key is still a duplicate.
        #expect(TestSupport.encodeError(#"{"id":1,"\u0069d":2}"#, columns: ["id"])
            == JSONStreamError(code: .duplicateColumn, row: 1, column: "id", byteOffset: 8))
    }

    @Test func escapedKeysAreComparedDecoded() throws {
        let out = try TestSupport.encode(#"{"\u0069d":1,"n\u0061me":"x","BIRTH\u0044ATE":null}"#, columns: columns)
        #expect(out == line("1", "x", #"\N"#, "1"))
        let slash = try TestSupport.encode(#"{"a\/b":1,"c\"d":2,"e\\f":3,"g\th":4}"#, columns: ["a/b", "c\"d", "e\\f", "g\th"])
        #expect(slash == line("1", "2", "3", "4", "1"))
    }

    @Test func nonASCIIColumnNames() throws {
        let columns = ["n\u{E9}", "\u{1F600}", "\u{4E2D}"]
        let out = try TestSupport.encode(
            "{\"\u{4E2D}\":3,\"\\ud83d\\ude00\":2,\"n\\u00e9\":1}", columns: columns, options: .init(appendRowNumber: false))
        #expect(out == line("1", "2", "3"))
        // Precomposed vs decomposed are different keys: exact byte match.
        #expect(TestSupport.encodeError("{\"ne\u{301}\":1}", columns: columns)?.code == .unknownColumn)
    }

    @Test func keysSplitAcrossChunks() throws {
        let input = #"[{"name":"a","BIRTHDATE":"b","id":1},{"id":2,"BIRTHDATE":"d","name":"c"}]"#
        for size in 1 ... 9 {
            let out = try TestSupport.encode(input, columns: columns, chunkSizes: [size])
            #expect(out == line("1", "a", "b", "1") + line("2", "c", "d", "2"), "chunk size \(size)")
        }
        for size in 1 ... 9 {
            let error = TestSupport.encodeError(#"{"id":1,"nam":2}"#, columns: columns, chunkSizes: [size])
            #expect(error == JSONStreamError(code: .unknownColumn, row: 1, column: "nam", byteOffset: 8))
        }
    }

    @Test func keyMustBeAString() {
        #expect(TestSupport.encodeError(#"{id:1}"#, columns: ["id"]) == JSONStreamError(code: .syntax, row: 1, byteOffset: 1))
        #expect(TestSupport.encodeError(#"{"id" 1}"#, columns: ["id"])
            == JSONStreamError(code: .syntax, row: 1, column: "id", byteOffset: 6))
        #expect(TestSupport.encodeError(#"{"id":1,}"#, columns: ["id"]) == JSONStreamError(code: .syntax, row: 1, byteOffset: 8))
        #expect(TestSupport.encodeError(#"{"id":}"#, columns: ["id"])
            == JSONStreamError(code: .syntax, row: 1, column: "id", byteOffset: 6))
    }

    @Test func zeroColumns() throws {
        #expect(try TestSupport.encode("[{},{}]", columns: []) == "1\n2\n")
        #expect(try TestSupport.encode("[{},{}]", columns: [], options: .init(appendRowNumber: false)) == "\n\n")
        #expect(TestSupport.encodeError(#"[{"a":1}]"#, columns: [])?.code == .unknownColumn)
    }

    @Test func manyColumns() throws {
        let columns = (0 ..< 300).map { "column_\($0)" }
        let object = "{" + columns.reversed().enumerated().map { "\"\($1)\":\($0)" }.joined(separator: ",") + "}"
        let out = try TestSupport.encode(object, columns: columns, options: .init(appendRowNumber: false))
        #expect(out == (0 ..< 300).map { String(299 - $0) }.joined(separator: "\t") + "\n")
    }
}
