import CopyEncoding
import JSONParsing
import Testing

/// Depth and value-size limits: clean failures, never crashes or unbounded growth.
@Suite("Limits")
struct LimitTests {
    @Test func hundredThousandDeepNestingInAValueFailsCleanly() {
        let depth = 100_000
        let input = Array(#"{"v":"#.utf8) + [UInt8](repeating: 0x5B, count: depth) + [UInt8](repeating: 0x5D, count: depth) + [0x7D]
        #expect(TestSupport.encodeError(input, columns: ["v"])
            == JSONStreamError(code: .depthExceeded, row: 1, column: "v", byteOffset: 5 + 512))
        #expect(TestSupport.encodeError(input, columns: ["v"], chunkSizes: [4096])?.code == .depthExceeded)
        let objects = Array(#"{"v":"#.utf8) + Array(String(repeating: #"{"a":"#, count: depth).utf8)
        #expect(TestSupport.encodeError(objects, columns: ["v"])?.code == .depthExceeded)
    }

    @Test func hundredThousandDeepNestingInTheValidatorFailsCleanly() {
        let input = [UInt8](repeating: 0x5B, count: 100_000)
        #expect(TestSupport.validationError(input) == JSONStreamError(code: .depthExceeded, byteOffset: 512))
        // With an enormous limit the explicit stack just grows; it still never recurses.
        #expect(TestSupport.validationError(input, maxDepth: 1_000_000)?.code == .unexpectedEnd)
        let balanced = input + [UInt8](repeating: 0x5D, count: 100_000)
        #expect(TestSupport.validationError(balanced, maxDepth: 100_000) == nil)
    }

    @Test func depthLimitIsExact() throws {
        let options = CopyRowEncoder.Options(maxDepth: 3)
        #expect(try TestSupport.encode(#"{"v":[[[1]]]}"#, columns: ["v"], options: options) == "[[[1]]]\t1\n")
        #expect(try TestSupport.encode(#"{"v":[{"a":[]},[[]]]}"#, columns: ["v"], options: options) == "[{\"a\":[]},[[]]]\t1\n")
        #expect(TestSupport.encodeError(#"{"v":[[[[1]]]]}"#, columns: ["v"], options: options)
            == JSONStreamError(code: .depthExceeded, row: 1, column: "v", byteOffset: 8))
        #expect(TestSupport.encodeError(#"{"v":[]}"#, columns: ["v"], options: .init(maxDepth: 0))?.code == .depthExceeded)
        #expect(try TestSupport.encode(#"{"v":1}"#, columns: ["v"], options: .init(maxDepth: 0)) == "1\t1\n")
        #expect(TestSupport.validationError(Array("[[[1]]]".utf8), maxDepth: 3) == nil)
        #expect(TestSupport.validationError(Array("[[[[1]]]]".utf8), maxDepth: 3)?.code == .depthExceeded)
    }

    @Test func valueTooLarge() throws {
        let options = CopyRowEncoder.Options(maxValueBytes: 8)
        // Exactly at the limit is fine.
        #expect(try TestSupport.encode(#"{"v":"12345678","w":12345678}"#, columns: ["v", "w"], options: options)
            == "12345678\t12345678\t1\n")
        #expect(try TestSupport.encode(#"{"v":[1,2,34]}"#, columns: ["v"], options: options) == "[1,2,34]\t1\n")
        let cases: [(String, Int)] = [
            (#"{"v":"123456789"}"#, 5), // string
            (#"{"v":123456789}"#, 5), // number
            (#"{"v":[1,2,3,45]}"#, 5), // nested
            (#"{"v":"1234\\5678"}"#, 5), // the COPY text counts: \\ is two bytes
            (#"{"v":"1234567\t"}"#, 5),
            (#"{"w":1,"v":"\u00e9\u00e9\u00e9\u00e9\u00e9"}"#, 11), // 10 bytes of UTF-8
        ]
        for (input, offset) in cases {
            for chunkSizes in [[], [1], [3]] {
                #expect(TestSupport.encodeError(input, columns: ["v", "w"].filter { input.contains("\"\($0)\"") },
                                                options: options, chunkSizes: chunkSizes)
                    == JSONStreamError(code: .valueTooLarge, row: 1, column: "v", byteOffset: offset), "\(input)")
            }
        }
        #expect(try TestSupport.encode(#"{"v":null}"#, columns: ["v"], options: .init(maxValueBytes: 2)) == "\\N\t1\n")
        #expect(TestSupport.encodeError(#"{"v":false}"#, columns: ["v"], options: .init(maxValueBytes: 4))?.code == .valueTooLarge)
    }

    @Test func hugeValueFailsEarlyWhenStreamed() throws {
        // A 32 MiB string against a 1 MiB limit, fed in 64 KiB chunks: fails in the chunk
        // that crosses the limit, long before the end of the value.
        let limit = 1 << 20
        var encoder = CopyRowEncoder(columns: ["v"], options: .init(maxValueBytes: limit))
        var output: [UInt8] = []
        let chunk = [UInt8](repeating: 0x61, count: 64 << 10)
        try Array(#"{"v":""#.utf8).withUnsafeBytes { try encoder.feed($0, into: &output) }
        var fed = 0
        var failure: JSONStreamError?
        while fed < 32 << 20 {
            do {
                try chunk.withUnsafeBytes { try encoder.feed($0, into: &output) }
            } catch let error as JSONStreamError {
                failure = error
                break
            }
            fed += chunk.count
        }
        #expect(failure == JSONStreamError(code: .valueTooLarge, row: 1, column: "v", byteOffset: 5))
        #expect(fed <= limit)
        #expect(output.isEmpty)
    }

    @Test func longKeysAndWhitespaceNeedNoMemory() throws {
        // A huge unknown key is validated without being stored whole.
        let key = String(repeating: "x", count: 5 << 20)
        #expect(TestSupport.encodeError("{\"\(key)\":1}", columns: ["v"], chunkSizes: [4096])?.column
            == String(repeating: "x", count: 64))
        let spaces = String(repeating: " ", count: 1 << 20)
        #expect(try TestSupport.encode("\(spaces)[\(spaces){\"v\"\(spaces):\(spaces)1\(spaces)}\(spaces)]\(spaces)",
                                       columns: ["v"], chunkSizes: [4096]) == "1\t1\n")
    }
}
