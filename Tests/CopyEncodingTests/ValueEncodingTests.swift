import CopyEncoding
import JSONParsing
import Testing

/// How each kind of JSON value becomes a COPY text field.
@Suite("Value encoding")
struct ValueEncodingTests {
    /// Encodes `{"v": <json>}` with one column and no row number; returns the field text.
    func field(_ json: String) throws -> String {
        let out = try TestSupport.encode(
            "{\"v\":\(json)}", columns: ["v"], options: .init(appendRowNumber: false))
        #expect(out.hasSuffix("\n"))
        return String(out.dropLast())
    }

    func fieldError(_ json: String) -> JSONStreamError? {
        TestSupport.encodeError("{\"v\":\(json)}", columns: ["v"])
    }

    @Test func keyOrderIndependence() throws {
        let columns = ["a", "b", "c"]
        let input = """
            {"a":1,"b":2,"c":3}
            {"c":3,"b":2,"a":1}
            {"b":2,"a":1,"c":3}
            {"a":1,"c":3,"b":2}
            """
        let out = try TestSupport.encode(input, columns: columns)
        #expect(out == line("1", "2", "3", "1") + line("1", "2", "3", "2") + line("1", "2", "3", "3") + line("1", "2", "3", "4"))
    }

    @Test func outOfOrderRowFollowedByInOrderRow() throws {
        let input = #"[{"b":"x","a":"y"},{"a":"p","b":"q"},{"b":"","a":""}]"#
        let out = try TestSupport.encode(input, columns: ["a", "b"])
        #expect(out == line("y", "x", "1") + line("p", "q", "2") + line("", "", "3"))
    }

    @Test func nullAndBooleans() throws {
        #expect(try field("null") == #"\N"#)
        #expect(try field("true") == "true")
        #expect(try field("false") == "false")
        #expect(try field(#""null""#) == "null")
        #expect(try field(#""\\N""#) == #"\\N"#) // the string \N is not NULL
    }

    @Test func badLiterals() {
        for json in ["nul", "nulll", "True", "tru", "fals", "falsey", "nan", "NaN", "Infinity", "undefined"] {
            #expect(fieldError(json)?.code == .syntax, "\(json)")
        }
    }

    @Test func numbersAreExactSourceText() throws {
        for json in ["0", "-0", "1", "-1", "123456789012345678901234567890", "1.5", "-0.0", "1e5", "1E+5", "1e-5",
                     "0.000001", "12.34e-056", "-1.0E+2", "1e99999", "-1e-99999", "9999999999999999999999e9999999"] {
            #expect(try field(json) == json, "\(json)")
            #expect(try field(" \(json) ") == json, "\(json) with whitespace")
        }
    }

    @Test func invalidNumbers() {
        for json in ["01", "-01", "00", "+1", ".5", "1.", "-", "1e", "1e+", "1E-", "-.5", "1.e5", "0x10", "1.5.2",
                     "1e5.5", "- 1", "2.", "-a", "1ee5", "0e", "1..2"] {
            #expect(fieldError(json)?.code == .syntax, "\(json)")
        }
    }

    @Test func plainStrings() throws {
        #expect(try field(#""""#) == "")
        #expect(try field(#""hello world""#) == "hello world")
        #expect(try field(#""O'Brien; <b>&amp; 100% {x} [y]""#) == "O'Brien; <b>&amp; 100% {x} [y]")
        #expect(try field("\"caf\u{E9} \u{20AC} \u{1F600} \u{4E2D}\u{6587}\"") == "caf\u{E9} \u{20AC} \u{1F600} \u{4E2D}\u{6587}")
        #expect(try field("\"\u{7F}\"") == "\u{7F}")
        let long = String(repeating: "abcdefghij", count: 1000)
        #expect(try field("\"\(long)\"") == long)
    }

    @Test func everyEscape() throws {
        #expect(try field(#""\"""#) == "\"")
        #expect(try field(#""\\""#) == #"\\"#)
        #expect(try field(#""\/""#) == "/")
        #expect(try field(#""\b""#) == "\u{08}")
        #expect(try field(#""\f""#) == "\u{0C}")
        #expect(try field(#""\n""#) == #"\n"#)
        #expect(try field(#""\r""#) == #"\r"#)
        #expect(try field(#""\t""#) == #"\t"#)
        #expect(try field(#""\u0041\u00e9\u20AC\uFFFF""#) == "A\u{E9}\u{20AC}\u{FFFF}")
        #expect(try field(#""\ud83d\ude00\uD834\uDD1E""#) == "\u{1F600}\u{1D11E}")
        #expect(try field(#""\uDBFF\uDFFF""#) == "\u{10FFFF}")
        #expect(try field(#""\u0001\u001f""#) == "\u{01}\u{1F}")
        #expect(try field(#""a\"b\\c\/d""#) == #"a"b\\c/d"#)
    }

    @Test func copySpecialCharactersFromEscapesAreCopyEscaped() throws {
        // Tab, newline, carriage return and backslash, however they were written in JSON.
        #expect(try field(#""a\tb""#) == #"a\tb"#)
        #expect(try field(#""a\u0009b""#) == #"a\tb"#)
        #expect(try field(#""line1\nline2\r\n""#) == #"line1\nline2\r\n"#)
        #expect(try field(#""\u000A\u000d""#) == #"\n\r"#)
        #expect(try field(#""C:\\dir\\file""#) == #"C:\\dir\\file"#)
        #expect(try field(#""\u005C""#) == #"\\"#)
        #expect(try field(#""\\.""#) == #"\\."#)
    }

    @Test func badEscapes() {
        for json in [#""\x""#, #""\a""#, #""\U0041""#, #""\u004""#, #""\u00G1""#, #""\'""#, #""\ ""#, "\"\\\u{E9}\""] {
            #expect(fieldError(json)?.code == .syntax, "\(json)")
        }
    }

    @Test func rawControlCharactersInStringsAreSyntaxErrors() {
        for byte in [0x00, 0x01, 0x09, 0x0A, 0x0D, 0x1F] as [UInt8] {
            let input = Array(#"{"v":"a"#.utf8) + [byte] + Array(#"b"}"#.utf8)
            #expect(TestSupport.encodeError(input, columns: ["v"])
                == JSONStreamError(code: .syntax, row: 1, column: "v", byteOffset: 7), "byte \(byte)")
        }
    }

    @Test func nestedValuesAreCompactJSON() throws {
        #expect(try field("{}") == "{}")
        #expect(try field("[]") == "[]")
        #expect(try field("[ ]") == "[]")
        #expect(try field("{ \"a\" : [ 1 , 2.5e3 , -0 ] ,\n\t\"b\" : { \"c\" : null , \"d\" : true } }")
            == #"{"a":[1,2.5e3,-0],"b":{"c":null,"d":true}}"#)
        #expect(try field(#"[null, false, "x", {}, [[]]]"#) == #"[null,false,"x",{},[[]]]"#)
        #expect(try field("[\"caf\u{E9}\", \"\u{1F600}\"]") == "[\"caf\u{E9}\",\"\u{1F600}\"]")
    }

    @Test func nestedStringsKeepTheirEscapesWithBackslashesDoubled() throws {
        // Inside nested JSON, escapes stay escapes; COPY then doubles every backslash so that
        // PostgreSQL reads back exactly the JSON text.
        #expect(try field(#"["a\tb", "c\nd", "e\\f", "\"", "\u00e9", "\ud83d\ude00"]"#)
            == #"["a\\tb","c\\nd","e\\\\f","\\"","\\u00e9","\\ud83d\\ude00"]"#)
        #expect(try field(#"{"k\"ey": "v\/"}"#) == #"{"k\\"ey":"v\\/"}"#)
    }

    @Test func nestedSyntaxErrors() {
        for json in ["[1,]", "[,1]", "{\"a\":1,}", "{\"a\"}", "{\"a\" 1}", "{1:2}", "[1 2]", "{\"a\":1 \"b\":2}", "[}",
                     "{]", "[1}", "{\"a\":1]", "[01]", "[1.]", "{'a':1}", "[\"a\" \"b\"]", "[truee]", "{,}", "[[]"] {
            let error = fieldError(json)
            #expect(error?.code == .syntax || error?.code == .unexpectedEnd, "\(json)")
        }
    }

    @Test func nestedValidationAppliesStringRules() {
        #expect(fieldError(#"["\u0000"]"#)?.code == .nulCharacter)
        #expect(fieldError(#"{"a":"\ud800"}"#)?.code == .loneSurrogate)
        #expect(TestSupport.encodeError(Array(#"{"v":["#.utf8) + [0x22, 0xC0, 0x80, 0x22] + Array("]}".utf8), columns: ["v"])?.code
            == .invalidUTF8)
    }

    @Test func nestedRawControlCharacterAndTabWhitespace() throws {
        #expect(fieldError("[\"a\tb\"]")?.code == .syntax)
        // Tabs and newlines as whitespace between tokens are dropped, never written raw.
        #expect(try field("[\t1,\n2\r\n]") == "[1,2]")
    }

    @Test func manyColumnsAndTypes() throws {
        let columns = ["ID", "BIRTHDATE", "NAME", "SCORE", "ACTIVE", "TAGS", "NOTE"]
        let input = """
            [{"ID": 42, "BIRTHDATE": "1990-01-31", "NAME": "Zo\\u00eb \\"Z\\"", "SCORE": -1.5e-3,
              "ACTIVE": true, "TAGS": ["a", "b"], "NOTE": null}]
            """
        let out = try TestSupport.encode(input, columns: columns)
        #expect(out == line("42", "1990-01-31", "Zo\u{EB} \"Z\"", "-1.5e-3", "true", #"["a","b"]"#, #"\N"#, "1"))
    }
}
