import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import StarpipeCore

/// Signed requests to one S3 bucket over async-http-client, for callers on their own threads (the worker's
/// slots, the extractor): every call blocks until its answer, and transient failures are retried with
/// ``S3RetryPolicy``. Errors name the operation, the key and the bucket; they never carry a secret or a value.
final class S3Client: Sendable {
    let location: S3Location
    let retry: S3RetryPolicy
    private let signer: SigV4Signer
    private let http: HTTPClient

    /// One answer, its body read whole (small answers only: XML, manifests).
    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
    }

    init(location: S3Location, credentials: AWSCredentials, retry: S3RetryPolicy, connectTimeoutSeconds: Double) {
        self.location = location
        self.retry = retry
        signer = SigV4Signer(credentials: credentials, region: location.region)
        var configuration = HTTPClient.Configuration(
            redirectConfiguration: .disallow,
            timeout: .init(connect: .milliseconds(Int64(connectTimeoutSeconds * 1000)), read: .seconds(60)))
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit {
        try? http.syncShutdown()
    }

    /// Sends one request and reads its answer; non-2xx answers (and a 2xx whose XML body is an `<Error>`, as
    /// CompleteMultipartUpload may send) are failures. `payloadHash` defaults to the SHA-256 of `body`.
    func send(_ method: HTTPMethod, key: String?, query: [(name: String, value: String)] = [],
              headers: [(name: String, value: String)] = [], body: ByteBuffer? = nil,
              payloadHash: String? = nil, errorInOK: Bool = false) throws(S3Failure) -> Response {
        let hash = payloadHash ?? body.map { buffer in
            buffer.withUnsafeReadableBytes { SigV4Signer.hexSHA256($0) }
        } ?? SigV4Signer.emptyPayloadHash
        let request = try makeRequest(method, key: key, query: query, headers: headers, body: body, payloadHash: hash)
        let response: HTTPClient.Response
        do {
            response = try http.execute(request: request).wait()
        } catch {
            throw S3Failure(status: nil, code: nil, transport: Self.describe(error))
        }
        var bytes: [UInt8] = []
        if var buffer = response.body { bytes = buffer.readBytes(length: buffer.readableBytes) ?? [] }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            throw S3Failure(status: status, code: S3XML(bytes)?.first("Code"), transport: nil)
        }
        if errorInOK {
            guard let xml = S3XML(bytes) else { throw S3Failure(status: status, code: "MalformedResponse", transport: nil) }
            if xml.root == "Error" { throw S3Failure(status: status, code: xml.first("Code") ?? "Error", transport: nil) }
        }
        return Response(status: status, headers: response.headers, body: bytes)
    }

    /// Streams an object's bytes to `body` in order, in chunks of at most `chunkSize` bytes. A connection lost
    /// mid-way resumes where it stopped (a ranged GET pinned to the first answer's ETag), so nothing is read twice.
    func stream(_ key: String, chunkSize: Int, operation: String,
                _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var delivered: Int64 = 0
        var etag: String?
        var attempt = 0
        while true {
            do {
                try streamOnce(key, from: delivered, etag: etag, chunkSize: chunkSize, delivered: &delivered,
                               etagSeen: &etag, body)
                return
            } catch let failure as S3Failure {
                guard failure.isTransient, attempt + 1 < retry.attempts else {
                    throw failure.error(operation, key: key, bucket: location.bucket)
                }
                Thread.sleep(forTimeInterval: retry.delay(after: attempt))
                attempt += 1
            }
        }
    }

    private func streamOnce(_ key: String, from offset: Int64, etag: String?, chunkSize: Int, delivered: inout Int64,
                            etagSeen: inout String?, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        var headers: [(name: String, value: String)] = []
        if offset > 0 {
            headers.append(("range", "bytes=\(offset)-"))
            // The rest must come from the same object: a replaced one answers 412 and the stream fails.
            if let etag { headers.append(("if-match", etag)) }
        }
        let request = try makeRequest(.GET, key: key, query: [], headers: headers, body: nil, payloadHash: SigV4Signer.emptyPayloadHash)
        let delegate = S3DownloadDelegate()
        let task = http.execute(request: request, delegate: delegate)
        var status = 0
        var errorBody: [UInt8] = []
        while true {
            switch delegate.next() {
            case .head(let head):
                status = Int(head.status.code)
                if (200..<300).contains(status), etagSeen == nil { etagSeen = head.headers.first(name: "etag") }
                if offset > 0, status == 200 {
                    // The store ignored the range: a resumed stream would repeat bytes. Fail rather than guess.
                    task.cancel()
                    throw S3Failure(status: status, code: "RangeIgnored", transport: nil)
                }
            case .part(let buffer, let promise):
                guard (200..<300).contains(status) else {
                    if errorBody.count < 64 << 10 { errorBody += buffer.readableBytesView }
                    promise.succeed(())
                    continue
                }
                do {
                    try buffer.withUnsafeReadableBytes { bytes in
                        var start = 0
                        while start < bytes.count {
                            let end = min(start + chunkSize, bytes.count)
                            try body(UnsafeRawBufferPointer(rebasing: bytes[start..<end]))
                            start = end
                        }
                    }
                } catch {
                    promise.fail(error)
                    task.cancel()
                    throw error
                }
                delivered += Int64(buffer.readableBytes)
                promise.succeed(())
            case .end:
                guard (200..<300).contains(status) else {
                    throw S3Failure(status: status, code: S3XML(errorBody)?.first("Code"), transport: nil)
                }
                return
            case .failed(let error):
                throw S3Failure(status: nil, code: nil, transport: Self.describe(error))
            }
        }
    }

    private func makeRequest(_ method: HTTPMethod, key: String?, query: [(name: String, value: String)],
                             headers: [(name: String, value: String)], body: ByteBuffer?,
                             payloadHash: String) throws(S3Failure) -> HTTPClient.Request {
        let path = location.encodedPath(key: key)
        var signed: [(name: String, value: String)] = [("host", location.hostHeader)] + headers
        signed += signer.sign(SigV4Signer.Request(method: method.rawValue, encodedPath: path, query: query,
                                                  headers: signed, payloadHash: payloadHash), at: Date())
        var httpHeaders = HTTPHeaders()
        for (name, value) in signed { httpHeaders.add(name: name, value: value) }
        let queryText = S3URIEncoding.canonicalQuery(query)
        let url = location.origin + path + (queryText.isEmpty ? "" : "?" + queryText)
        do {
            return try HTTPClient.Request(url: url, method: method, headers: httpHeaders, body: body.map { .byteBuffer($0) })
        } catch {
            throw S3Failure(status: nil, code: "InvalidRequestURL", transport: nil)
        }
    }

    /// A transport error's kind, without anything from the request (headers carry the signature).
    private static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError { return "connection: \(error.shortDescription)" }
        return "connection: \(type(of: error))"
    }
}
