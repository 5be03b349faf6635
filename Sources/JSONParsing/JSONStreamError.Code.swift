extension JSONStreamError {
    /// A stable error code. Compare against the static members, e.g.
    /// `error.code == .invalidUTF8`; ``description`` is the member's name.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: UInt8, Hashable, Sendable {
            case syntax, unexpectedEnd, invalidUTF8, loneSurrogate, nulCharacter, depthExceeded
            case valueTooLarge, notAnObject, unknownColumn, missingColumn, duplicateColumn, trailingData, invalidBase64
        }

        private let kind: Kind

        private init(_ kind: Kind) {
            self.kind = kind
        }

        /// The bytes are not valid JSON (RFC 8259) at this point: an unexpected byte, a bad
        /// number, a bad escape, a raw control character inside a string, a UTF-8 BOM, or
        /// NDJSON objects not separated by whitespace.
        public static let syntax = Code(.syntax)
        /// The input ended inside a value, an object or the array (or was empty).
        public static let unexpectedEnd = Code(.unexpectedEnd)
        /// A string contains bytes that are not well-formed UTF-8 (overlong forms, encoded
        /// surrogates, code points above U+10FFFF, stray or missing continuation bytes).
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// A `\uXXXX` escape is a UTF-16 surrogate that is not part of a valid pair.
        public static let loneSurrogate = Code(.loneSurrogate)
        /// A string contains the escape `\u0000`; PostgreSQL text cannot hold NUL.
        public static let nulCharacter = Code(.nulCharacter)
        /// Objects and arrays are nested deeper than the configured maximum depth.
        public static let depthExceeded = Code(.depthExceeded)
        /// One encoded value is longer than the configured maximum number of bytes.
        public static let valueTooLarge = Code(.valueTooLarge)
        /// A top-level value (NDJSON) or an array element is not an object.
        public static let notAnObject = Code(.notAnObject)
        /// An object has a key that is not one of the expected columns.
        public static let unknownColumn = Code(.unknownColumn)
        /// An object lacks one of the expected columns.
        public static let missingColumn = Code(.missingColumn)
        /// An object has the same key twice.
        public static let duplicateColumn = Code(.duplicateColumn)
        /// Something other than whitespace follows the end of the document.
        public static let trailingData = Code(.trailingData)
        /// A column the manifest marks `"encoding": "base64"` holds something other than null or a string of
        /// canonical base64 (RFC 4648 section 4: the standard alphabet, padded, no whitespace, unused bits zero).
        public static let invalidBase64 = Code(.invalidBase64)

        /// The stable name of the code, e.g. `invalidUTF8`.
        public var description: String {
            switch kind {
            case .syntax: "syntax"
            case .unexpectedEnd: "unexpectedEnd"
            case .invalidUTF8: "invalidUTF8"
            case .loneSurrogate: "loneSurrogate"
            case .nulCharacter: "nulCharacter"
            case .depthExceeded: "depthExceeded"
            case .valueTooLarge: "valueTooLarge"
            case .notAnObject: "notAnObject"
            case .unknownColumn: "unknownColumn"
            case .missingColumn: "missingColumn"
            case .duplicateColumn: "duplicateColumn"
            case .trailingData: "trailingData"
            case .invalidBase64: "invalidBase64"
            }
        }

        /// A short human-readable phrase used in ``JSONStreamError/description``.
        var message: String {
            switch kind {
            case .syntax: "syntax error"
            case .unexpectedEnd: "unexpected end of input"
            case .invalidUTF8: "invalid UTF-8"
            case .loneSurrogate: "lone UTF-16 surrogate escape"
            case .nulCharacter: "NUL character (\\u0000) not allowed"
            case .depthExceeded: "nesting too deep"
            case .valueTooLarge: "value too large"
            case .notAnObject: "element is not an object"
            case .unknownColumn: "unknown column"
            case .missingColumn: "missing column"
            case .duplicateColumn: "duplicate column"
            case .trailingData: "trailing data after the document"
            case .invalidBase64: "invalid base64"
            }
        }
    }
}
