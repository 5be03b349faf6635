import Foundation
import CopyEncoding
import JSONParsing
import Testing

/// The encoder's value path is the validator's tokenizer: every JSONTestSuite document,
/// wrapped as the single value of a row and fed in small chunks, must get the same verdict
/// (except `\u0000`, which only the encoder rejects), and accepted nested values must come
/// out as valid, stable compact JSON.
@Suite("Encoder on JSONTestSuite documents")
struct EncoderConformanceTests {
    static func wrapped(_ document: [UInt8]) -> [UInt8] {
        Array(#"{"v":"#.utf8) + document + Array("}".utf8)
    }

    /// Whether the text has a `\u0000` escape (a `\` not itself escaped, then `u0000`).
    static func containsNULEscape(_ bytes: [UInt8]) -> Bool {
        var index = 0
        while index < bytes.count {
            if bytes[index] == 0x5C {
                if Array(bytes[(index + 1)...].prefix(5)) == Array("u0000".utf8) {
                    return true
                }
                index += 2
            } else {
                index += 1
            }
        }
        return false
    }

    /// Undoes COPY text escaping of one field (`\\` → `\`, `\n` → newline, …).
    static func copyUnescaped(_ field: [UInt8]) -> [UInt8] {
        var result: [UInt8] = []
        var index = 0
        while index < field.count {
            let byte = field[index]
            if byte == 0x5C && index + 1 < field.count {
                let next = field[index + 1]
                switch next {
                case 0x6E: result.append(0x0A)
                case 0x72: result.append(0x0D)
                case 0x74: result.append(0x09)
                default: result.append(next)
                }
                index += 2
            } else {
                result.append(byte)
                index += 1
            }
        }
        return result
    }

    @Test func sameVerdictAsTheValidator() throws {
        var disagreements: [String] = []
        for file in try ConformanceTests.files() {
            let validatorAccepts = TestSupport.validationError(file.bytes) == nil
            let hasNUL = Self.containsNULEscape(file.bytes)
            for chunkSizes in [[], [1], [3, 7]] {
                let error = TestSupport.encodeError(
                    Self.wrapped(file.bytes), columns: ["v"], options: .init(appendRowNumber: false), chunkSizes: chunkSizes)
                let encoderAccepts = error == nil
                let agrees = validatorAccepts && hasNUL ? error?.code == .nulCharacter : encoderAccepts == validatorAccepts
                if !agrees {
                    disagreements.append("\(file.name) \(chunkSizes): validator \(validatorAccepts), encoder \(error.map(\.debugDescription) ?? "accepted")")
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.joined(separator: "\n"))")
    }

    @Test func nestedOutputIsValidStableJSON() throws {
        var checked = 0
        for file in try ConformanceTests.files() where file.name.hasPrefix("y_") {
            let trimmed = file.bytes.drop { [0x20, 0x0A, 0x0D, 0x09].contains($0) }
            guard let first = trimmed.first, first == 0x5B || first == 0x7B,
                  let out = try? TestSupport.encodeBytes(Self.wrapped(file.bytes), columns: ["v"], options: .init(appendRowNumber: false))
            else {
                continue
            }
            let field = Array(out.dropLast())
            #expect(!field.contains(0x0A) && !field.contains(0x09) && !field.contains(0x0D), "\(file.name)")
            let json = Self.copyUnescaped(field)
            #expect(TestSupport.validationError(json) == nil, "\(file.name)")
            #expect(!json.contains(0x20) || String(decoding: json, as: UTF8.self).contains("\""), "\(file.name): not compact")
            // Compact text re-encodes to itself.
            let again = try TestSupport.encodeBytes(Self.wrapped(json), columns: ["v"], options: .init(appendRowNumber: false))
            #expect(again == out, "\(file.name)")
            // Same data as Foundation reads from the source.
            if let expected = try? JSONSerialization.jsonObject(with: Data(file.bytes), options: [.fragmentsAllowed]),
               let actual = try? JSONSerialization.jsonObject(with: Data(json), options: [.fragmentsAllowed]) {
                #expect(NSDictionary(dictionary: ["v": expected]).isEqual(to: ["v": actual]), "\(file.name)")
            }
            checked += 1
        }
        #expect(checked > 50)
    }
}
