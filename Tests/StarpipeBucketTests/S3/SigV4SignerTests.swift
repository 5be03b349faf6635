import Foundation
import StarpipeBucket
import Testing

/// Known-answer vectors: AWS's published S3 examples (docs "Signature Calculations for the Authorization Header:
/// Transferring Payload in a Single Chunk"), and our own, computed independently with botocore 1.43's S3SigV4Auth.
@Suite("SigV4 signing")
struct SigV4SignerTests {
    static let signer = SigV4Signer(
        credentials: AWSCredentials(accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        region: "us-east-1")
    static let date = Date(timeIntervalSince1970: 1_369_353_600) // 2013-05-24T00:00:00Z
    static let host = ("host", "examplebucket.s3.amazonaws.com")

    private func authorization(_ request: SigV4Signer.Request) -> String {
        Self.signer.sign(request, at: Self.date).first { $0.name == "Authorization" }!.value
    }

    private func signature(_ request: SigV4Signer.Request) -> String {
        String(authorization(request).split(separator: "=").last!)
    }

    @Test("AWS example: GET Object with a Range header")
    func awsGetObject() {
        let request = SigV4Signer.Request(method: "GET", encodedPath: "/test.txt",
                                          headers: [Self.host, ("Range", "bytes=0-9")], payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(authorization(request) == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    }

    @Test("AWS example: PUT Object with a signed payload, a Date header and a storage class")
    func awsPutObject() {
        let body = Array("Welcome to Amazon S3.".utf8)
        let request = SigV4Signer.Request(
            method: "PUT", encodedPath: "/" + S3URIEncoding.encode("test$file.text", keepSlash: true),
            headers: [Self.host, ("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            payloadHash: SigV4Signer.hexSHA256(body))
        #expect(request.payloadHash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        #expect(signature(request) == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test("AWS example: GET Bucket lifecycle (a sub-resource without a value)")
    func awsLifecycle() {
        let request = SigV4Signer.Request(method: "GET", encodedPath: "/", query: [("lifecycle", "")],
                                          headers: [Self.host], payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(signature(request) == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test("AWS example: list objects, query sorted by name")
    func awsList() {
        let request = SigV4Signer.Request(method: "GET", encodedPath: "/", query: [("prefix", "J"), ("max-keys", "2")],
                                          headers: [Self.host], payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(signature(request) == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test("own vector: PUT of a structured key with Content-MD5 and a signed payload")
    func put() {
        let body = Array("[]\n".utf8)
        let request = SigV4Signer.Request(
            method: "PUT", encodedPath: "/" + S3URIEncoding.encode("client=acme/table=patients/data.json", keepSlash: true),
            headers: [Self.host, ("Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")], payloadHash: SigV4Signer.hexSHA256(body))
        #expect(request.encodedPath == "/client%3Dacme/table%3Dpatients/data.json")
        #expect(signature(request) == "c0128f20ecffdfc028dd6146bdad277f79ea3d13fdb810dcce38e027d99c137b")
    }

    @Test("own vector: ListObjectsV2 with '/' and '=' in the prefix and '+' in the continuation token")
    func listWithSlash() {
        let query = [("list-type", "2"), ("prefix", "acme/client=acme/"), ("continuation-token", "1/ab+=")]
        #expect(S3URIEncoding.canonicalQuery(query) == "continuation-token=1%2Fab%2B%3D&list-type=2&prefix=acme%2Fclient%3Dacme%2F")
        let request = SigV4Signer.Request(method: "GET", encodedPath: "/", query: query,
                                          headers: [Self.host], payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(signature(request) == "5f49f5c8e9fa140bd4bd3bdb8d8c18e57e25a1747ced56f3a3f81d635152f3d8")
    }

    @Test("own vector: a key with + = & ü @ : and a space is encoded once")
    func awkwardKey() {
        let path = "/" + S3URIEncoding.encode("a+b=c&d/ü@x y:.json", keepSlash: true)
        #expect(path == "/a%2Bb%3Dc%26d/%C3%BC%40x%20y%3A.json")
        let request = SigV4Signer.Request(method: "GET", encodedPath: path, headers: [Self.host],
                                          payloadHash: SigV4Signer.emptyPayloadHash)
        #expect(signature(request) == "30cf67347052fa6822aede49ecdb8d4507223a92331fe8e8fff091923dd81a36")
    }

    @Test("header values are trimmed and inner spaces collapsed; names are lower-cased and sorted")
    func canonicalHeaders() {
        let request = SigV4Signer.Request(method: "GET", encodedPath: "", headers: [("X-Amz-Meta-B", "  a   b "), ("Host", "h")],
                                          payloadHash: "UNSIGNED-PAYLOAD")
        let (text, signed) = Self.signer.canonicalRequest(request)
        #expect(text == "GET\n/\n\nhost:h\nx-amz-meta-b:a b\n\nhost;x-amz-meta-b\nUNSIGNED-PAYLOAD")
        #expect(signed == "host;x-amz-meta-b")
    }

    @Test("a session token is signed; the secret appears nowhere in the headers or the description")
    func sessionToken() {
        let signer = SigV4Signer(credentials: AWSCredentials(accessKeyID: "AKID", secretAccessKey: "s3cr3t-value", sessionToken: "tok"),
                                 region: "eu-west-1")
        let headers = signer.sign(.init(method: "GET", encodedPath: "/", headers: [("host", "h")], payloadHash: SigV4Signer.emptyPayloadHash),
                                  at: Self.date)
        #expect(headers.contains { $0.name == "x-amz-security-token" && $0.value == "tok" })
        #expect(headers.first { $0.name == "Authorization" }!.value.contains("SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token"))
        #expect(!headers.map(\.value).joined().contains("s3cr3t"))
        #expect(!"\(signer.credentials)".contains("s3cr3t"))
    }

    @Test("form decoding of event keys: + is a space, then percent escapes")
    func formDecode() {
        #expect(S3URIEncoding.formDecode("client%3Dacme%2Fa+b%2Bc%C3%BC.json") == "client=acme/a b+cü.json")
        #expect(S3URIEncoding.formDecode("bad%4") == nil)
        #expect(S3URIEncoding.formDecode("%FF") == nil)
    }
}
