import CopyEncoding
import Testing

/// The output (and any error) must not depend on where chunk boundaries fall.
@Suite("Chunking")
struct ChunkingTests {
    static let columns = ["id", "name", "note", "data", "score", "flag"]

    /// A document exercising multi-byte UTF-8 (2, 3 and 4 bytes), every escape, surrogate
    /// pairs, numbers, nested values, whitespace and out-of-order keys, so that chunk
    /// boundaries fall inside each of them somewhere.
    static let document: [UInt8] = {
        var rows: [String] = []
        for index in 0 ..< 40 {
            let row: String
            switch index % 4 {
            case 0:
                row = """
                    {"id": \(index), "name": "Zo\u{EB} \u{20AC}\u{1F600}\u{4E2D}\u{6587}", "note": "a\\tb\\nc\\\\d\\"e\\/f\\b\\f\\r",
                     "data": {"k": [1, -2.5e-3, "x\\u00e9\\ud83d\\ude00", null, true, false, {}]}, "score": -0.125E+10, "flag": true}
                    """
            case 1:
                row = """
                    {"flag":false,"score":1e99999,"data":[],"note":"\\u0041\\u00E9\\u20ac\\uD834\\uDD1E\\u000a\\u0009\\u005c","name":"\u{10FFFF}\u{800}\u{7FF}\u{80}","id":\(index)}
                    """
            case 2:
                row = """
                    {  "id" : \(index) ,
                       "n\\u0061me" : "" , "note" : null , "data" : [ [ [ "deep" ] ] ] , "score" : 0 , "flag" : null  }
                    """
            default:
                row = """
                    {"data":"\(String(repeating: "plain ascii text ", count: 10))","id":\(index),"name":"\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}\u{E9}","note":"\\\\\\\\\\\\","score":123456789012345678901234567890,"flag":true}
                    """
            }
            rows.append(row)
        }
        return Array(("[\n" + rows.joined(separator: ",\n") + "\n]\n").utf8)
    }()

    static let ndjson: [UInt8] = {
        // The same rows as NDJSON: one per line, with a blank line and CRLF between some.
        var text = String(decoding: document, as: UTF8.self)
        text.removeFirst(2) // "[\n"
        text.removeLast(3) // "\n]\n"
        return Array(text.replacingOccurrences(",\n{", with: "\r\n\n{").utf8)
    }()

    @Test func wholeByteByByteAndRandomChunksAgree() throws {
        for input in [Self.document, Self.ndjson] {
            let whole = try TestSupport.encodeBytes(input, columns: Self.columns)
            #expect(whole.filter { $0 == 0x0A }.count == 40)
            #expect(try TestSupport.encodeBytes(input, columns: Self.columns, chunkSizes: [1]) == whole)
            for size in [2, 3, 5, 7, 8, 9, 16, 17, 64, 4096] {
                #expect(try TestSupport.encodeBytes(input, columns: Self.columns, chunkSizes: [size]) == whole, "size \(size)")
            }
            for seed in 1 ... 20 as ClosedRange<UInt64> {
                var generator = SeededGenerator(seed: seed)
                let sizes = (0 ..< 64).map { _ in Int.random(in: 1 ... 40, using: &generator) }
                #expect(try TestSupport.encodeBytes(input, columns: Self.columns, chunkSizes: sizes) == whole, "seed \(seed)")
            }
        }
    }

    @Test func expectedOutputOfTheDocument() throws {
        let whole = String(decoding: try TestSupport.encodeBytes(Self.document, columns: Self.columns), as: UTF8.self)
        let lines = whole.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == #"0\#tZoë €😀中文\#ta\tb\nc\\d"e/f"# + "\u{8}\u{C}" + #"\r\#t{"k":[1,-2.5e-3,"x\\u00e9\\ud83d\\ude00",null,true,false,{}]}\#t-0.125E+10\#ttrue\#t1"#)
        #expect(lines[1] == "1\t\u{10FFFF}\u{800}\u{7FF}\u{80}\t" + #"Aé€𝄞\n\t\\\#t[]\#t1e99999\#tfalse\#t2"#)
        #expect(lines[2] == #"2\#t\#t\N\#t[[["deep"]]]\#t0\#t\N\#t3"#)
        #expect(lines[3] == "3\téééééééé\u{E9}\t" + #"\\\\\\\#t"# + String(repeating: "plain ascii text ", count: 10)
            + "\t123456789012345678901234567890\ttrue\t4")
    }

    @Test func errorsDoNotDependOnChunking() {
        var bad: [[UInt8]] = []
        var base = Self.document
        base.removeLast(4) // drop "}\n]\n": incomplete row 40
        bad.append(base)
        var utf8 = Self.document
        let position = utf8.firstIndex(of: 0xE2)! // inside "€" of row 1
        utf8[position + 1] = 0x28
        bad.append(utf8)
        bad.append(Self.document + Array("x".utf8))
        bad.append(Array(String(decoding: Self.document, as: UTF8.self).replacingOccurrences("\\uD834", with: "\\uD834 ").utf8))
        for input in bad {
            let expected = TestSupport.encodeError(input, columns: Self.columns)
            #expect(expected != nil)
            for size in [1, 3, 13] {
                #expect(TestSupport.encodeError(input, columns: Self.columns, chunkSizes: [size]) == expected)
            }
            var generator = SeededGenerator(seed: 99)
            let sizes = (0 ..< 32).map { _ in Int.random(in: 1 ... 50, using: &generator) }
            #expect(TestSupport.encodeError(input, columns: Self.columns, chunkSizes: sizes) == expected)
        }
    }

    @Test func everyTwoWaySplitAgrees() throws {
        // Split a small but dense document at every position into exactly two chunks.
        let input = Array(#"[{"id":1,"name":"\u00e9\ud83d\ude00é😀\\\"","note":[1e5,{"a":"\t"}],"data":-0.5,"score":null,"flag":true}]"#.utf8)
        let whole = try TestSupport.encodeBytes(input, columns: Self.columns)
        for split in 1 ..< input.count {
            #expect(try TestSupport.encodeBytes(input, columns: Self.columns, chunkSizes: [split, input.count]) == whole, "split \(split)")
        }
    }
}

private extension String {
    func replacingOccurrences(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
