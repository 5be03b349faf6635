import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import StarpipeCore

/// One object being written to S3: bytes gather in a buffer of one part; an object that stays below the part
/// size is sent with one PUT, a larger one becomes a multipart upload whose parts go as they fill. Each part
/// carries Content-MD5, its SHA-256 as the signed payload (and as `x-amz-checksum-sha256` when configured), and
/// is retried on its own. Memory holds one part.
final class S3Upload {
    private let client: S3Client
    private let key: String
    private var buffer: ByteBuffer
    private var uploadID: String?
    private var parts: [(number: Int, etag: String, checksum: String?)] = []
    private var total: Int64 = 0
    private var partSize: Int { client.location.partSize }
    private var bucket: String { client.location.bucket }

    init(client: S3Client, key: String) {
        self.client = client
        self.key = key
        buffer = ByteBufferAllocator().buffer(capacity: min(client.location.partSize, 1 << 20))
    }

    /// Appends bytes; uploads a part each time the buffer holds a whole one.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let take = min(partSize - buffer.readableBytes, bytes.count - offset)
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + take]))
            offset += take
            total += Int64(take)
            if buffer.readableBytes == partSize {
                if uploadID == nil { try create() }
                try uploadPart()
            }
        }
    }

    /// Sends what is left and commits the object, then checks that the store holds exactly the bytes written.
    func finish() throws {
        if uploadID == nil {
            let headers = digestHeaders(buffer)
            _ = try call("upload") { () throws(S3Failure) in
                try client.send(.PUT, key: key, headers: headers.headers, body: buffer, payloadHash: headers.sha256)
            }
        } else {
            if buffer.readableBytes > 0 { try uploadPart() }
            try complete()
        }
        buffer = ByteBuffer()
        let bucketView = S3Bucket(client: client)
        guard let stored = try bucketView.size(key), stored == total else {
            throw StarpipeError(.integrity, "S3 upload of \(key) in bucket \(bucket): the stored object is not the \(total) bytes written")
        }
    }

    /// Aborts the multipart upload, if one was started, so its parts stop costing storage. Best effort: a failure
    /// here is left to the bucket's lifecycle rule (AbortIncompleteMultipartUpload).
    func abort() {
        guard let uploadID else { return }
        _ = try? client.retry.run { () throws(S3Failure) in
            try client.send(.DELETE, key: key, query: [("uploadId", uploadID)])
        }
        self.uploadID = nil
    }

    private func create() throws {
        var headers: [(name: String, value: String)] = [("content-type", "application/json")]
        if client.location.checksumSHA256 { headers.append(("x-amz-checksum-algorithm", "SHA256")) }
        let response = try call("start multipart upload") { () throws(S3Failure) in
            try client.send(.POST, key: key, query: [("uploads", "")], headers: headers)
        }
        guard let id = S3XML(response.body)?.first("UploadId"), !id.isEmpty else {
            throw StarpipeError(.bucket, "S3 start multipart upload of \(key) in bucket \(bucket): no UploadId in the answer")
        }
        uploadID = id
    }

    private func uploadPart() throws {
        guard let uploadID else { return }
        let number = parts.count + 1
        guard number <= 10_000 else {
            throw StarpipeError(.bucketRefused, "S3 upload of \(key) in bucket \(bucket) needs more than 10000 parts: raise part_size")
        }
        let headers = digestHeaders(buffer)
        // The request shares the buffer's storage only while it runs, so clearing it afterwards reuses that storage
        // instead of allocating a second part.
        let response = try call("upload part \(number)") { () throws(S3Failure) in
            try client.send(.PUT, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)],
                            headers: headers.headers, body: buffer, payloadHash: headers.sha256)
        }
        guard let etag = response.headers.first(name: "etag") else {
            throw StarpipeError(.bucket, "S3 upload part \(number) of \(key) in bucket \(bucket): no ETag in the answer")
        }
        parts.append((number, etag, headers.checksum))
        buffer.clear()
    }

    private func complete() throws {
        guard let uploadID else { return }
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(Self.escape(part.etag))</ETag>"
            if let checksum = part.checksum { xml += "<ChecksumSHA256>\(checksum)</ChecksumSHA256>" }
            xml += "</Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let body = ByteBuffer(string: xml)
        let md5 = Data(Insecure.MD5.hash(data: Array(xml.utf8))).base64EncodedString()
        // A 200 may still carry an <Error> (S3 sends keep-alive spaces, then the outcome): always read the body.
        _ = try call("complete multipart upload") { () throws(S3Failure) in
            try client.send(.POST, key: key, query: [("uploadId", uploadID)],
                            headers: [("content-type", "application/xml"), ("content-md5", md5)], body: body, errorInOK: true)
        }
        self.uploadID = nil
    }

    /// Content-MD5 always, `x-amz-checksum-sha256` when configured; the hex SHA-256 signs the payload.
    private func digestHeaders(_ bytes: ByteBuffer) -> (headers: [(name: String, value: String)], sha256: String, checksum: String?) {
        bytes.withUnsafeReadableBytes { raw in
            let sha = SHA256.hash(data: raw)
            var headers: [(name: String, value: String)] = [
                ("content-md5", Data(Insecure.MD5.hash(data: raw)).base64EncodedString()),
            ]
            var checksum: String?
            if client.location.checksumSHA256 {
                checksum = Data(sha).base64EncodedString()
                headers.append(("x-amz-checksum-sha256", checksum!))
            }
            if uploadID == nil { headers.append(("content-type", "application/json")) }
            return (headers, SigV4Signer.hex(sha), checksum)
        }
    }

    private func call(_ operation: String,
                      _ body: () throws(S3Failure) -> S3Client.Response) throws(StarpipeError) -> S3Client.Response {
        do {
            return try client.retry.run(body)
        } catch {
            throw error.error(operation, key: key, bucket: bucket)
        }
    }

    private static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
