import Crypto
import Foundation

/// AWS Signature Version 4 header signing for S3 (and SQS with `service: "sqs"`).
///
/// The caller gives the path already encoded (``S3URIEncoding``, once) and the query unencoded; the signer
/// builds the canonical request, and returns the headers to send: `x-amz-date`, `x-amz-content-sha256` (S3),
/// `x-amz-security-token` when there is a session token, and `Authorization`.
public struct SigV4Signer: Sendable {
    /// The hashed payload value for a request whose body is not hashed (only over TLS, with Content-MD5).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"
    /// The hex SHA-256 of an empty body.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    public init(credentials: AWSCredentials, region: String, service: String = "s3") {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// One request to sign. Header names are case-insensitive; every header given is signed.
    public struct Request: Sendable {
        public var method: String
        /// The path, each segment encoded once, `/` between them (``S3URIEncoding/encode(_:keepSlash:)``).
        public var encodedPath: String
        /// Query parameters, not encoded.
        public var query: [(name: String, value: String)]
        /// Headers to sign; `host` must be among them.
        public var headers: [(name: String, value: String)]
        /// Hex SHA-256 of the body, or ``SigV4Signer/unsignedPayload``.
        public var payloadHash: String

        public init(method: String, encodedPath: String, query: [(name: String, value: String)] = [],
                    headers: [(name: String, value: String)], payloadHash: String) {
            self.method = method
            self.encodedPath = encodedPath
            self.query = query
            self.headers = headers
            self.payloadHash = payloadHash
        }
    }

    /// The headers to add to `request` (which already carries `host`) to sign it at `date`.
    public func sign(_ request: Request, at date: Date) -> [(name: String, value: String)] {
        let amzDate = Self.timestamp(date)
        var added: [(name: String, value: String)] = [("x-amz-date", amzDate)]
        if service == "s3" { added.append(("x-amz-content-sha256", request.payloadHash)) }
        if let token = credentials.sessionToken { added.append(("x-amz-security-token", token)) }
        var signed = request
        signed.headers += added
        let (canonical, signedHeaders) = canonicalRequest(signed)
        let scope = "\(amzDate.prefix(8))/\(region)/\(service)/aws4_request"
        let stringToSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Self.hexSHA256(Array(canonical.utf8)))"
        let signature = HMAC<SHA256>.authenticationCode(for: Array(stringToSign.utf8),
                                                         using: signingKey(day: String(amzDate.prefix(8))))
        added.append(("Authorization",
                      "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(Self.hex(signature))"))
        return added
    }

    /// The canonical request and the signed-header list (exposed for known-answer tests).
    public func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        var headers: [String: String] = [:]
        for (name, value) in request.headers {
            let key = name.lowercased()
            let trimmed = Self.collapse(value)
            headers[key] = headers[key].map { "\($0),\(trimmed)" } ?? trimmed
        }
        let names = headers.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(headers[$0]!)\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let path = request.encodedPath.isEmpty ? "/" : request.encodedPath
        let text = [request.method, path, S3URIEncoding.canonicalQuery(request.query), canonicalHeaders,
                    signedHeaders, request.payloadHash].joined(separator: "\n")
        return (text, signedHeaders)
    }

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC.
    public static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    public static func hexSHA256(_ bytes: some Sequence<UInt8>) -> String {
        hex(SHA256.hash(data: Array(bytes)))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func signingKey(day: String) -> SymmetricKey {
        var key = SymmetricKey(data: Array("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Array(HMAC<SHA256>.authenticationCode(for: Array(part.utf8), using: key)))
        }
        return key
    }

    /// Trims a header value and collapses inner runs of spaces to one.
    private static func collapse(_ value: String) -> String {
        var out = ""
        var lastWasSpace = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            if character == " " {
                if !lastWasSpace { out.append(" ") }
                lastWasSpace = true
            } else {
                out.append(character)
                lastWasSpace = false
            }
        }
        return out
    }
}
