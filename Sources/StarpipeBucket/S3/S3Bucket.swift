import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import StarpipeCore

/// A bucket in S3 or a store that speaks its API (`s3://BUCKET/PREFIX?…`, see ``S3Location``).
///
/// Keys are relative to the URL's prefix. `put` uploads small objects with one PUT and larger ones as a multipart
/// upload of ``S3Location/partSize`` parts, then checks the stored size; a failed or abandoned upload is aborted,
/// so no reader ever sees part of an object. `stream` reads straight from the response, one part at a time.
public struct S3Bucket: Bucket {
    /// Where the bucket is.
    public var location: S3Location { client.location }
    let client: S3Client

    /// Opens the bucket with the given credentials (see ``AWSCredentials/fromEnvironment(_:)``).
    /// `connectTimeoutSeconds` bounds each try at opening a connection (the client keeps trying within it);
    /// defaults to 10.
    public init(location: S3Location, credentials: AWSCredentials, retry: S3RetryPolicy = S3RetryPolicy(),
                connectTimeoutSeconds: Double = 10) {
        client = S3Client(location: location, credentials: credentials, retry: retry,
                          connectTimeoutSeconds: connectTimeoutSeconds)
    }

    init(client: S3Client) {
        self.client = client
    }

    public func list() throws(StarpipeError) -> [String] {
        try list(prefix: "")
    }

    /// Keys under `prefix` (relative to the bucket's), sorted; ListObjectsV2 pages of up to 1,000 keys.
    public func list(prefix: String) throws(StarpipeError) -> [String] {
        var keys: [String] = []
        var token: String?
        let full = location.prefix + prefix
        repeat {
            var query: [(name: String, value: String)] = [("list-type", "2")]
            if !full.isEmpty { query.append(("prefix", full)) }
            if let token { query.append(("continuation-token", token)) }
            let response = try call("list", key: prefix.isEmpty ? nil : prefix) { () throws(S3Failure) in
                try client.send(.GET, key: nil, query: query)
            }
            guard let xml = S3XML(response.body), xml.root == "ListBucketResult" else {
                throw StarpipeError(.bucket, "S3 list of bucket \(location.bucket) returned an unreadable answer")
            }
            for key in xml.all("Key") where key.hasPrefix(location.prefix) {
                keys.append(String(key.dropFirst(location.prefix.count)))
            }
            token = xml.first("IsTruncated") == "true" ? xml.first("NextContinuationToken") : nil
            if xml.first("IsTruncated") == "true", token?.isEmpty ?? true {
                throw StarpipeError(.bucket, "S3 list of bucket \(location.bucket) is truncated without a continuation token")
            }
        } while token != nil
        return keys.sorted()
    }

    public func read(_ key: String) throws(StarpipeError) -> Data {
        try BucketKey.check(key)
        let response = try call("read", key: key) { () throws(S3Failure) in try client.send(.GET, key: key) }
        return Data(response.body)
    }

    public func size(_ key: String) throws(StarpipeError) -> Int64? {
        try BucketKey.check(key)
        do {
            let response = try client.retry.run { () throws(S3Failure) in try client.send(.HEAD, key: key) }
            guard let length = response.headers.first(name: "content-length").flatMap(Int64.init) else {
                throw StarpipeError(.bucket, "S3 size of \(key) in bucket \(location.bucket): no Content-Length")
            }
            return length
        } catch let failure as S3Failure {
            if failure.status == 404 { return nil }
            throw failure.error("size", key: key, bucket: location.bucket)
        } catch let error as StarpipeError {
            throw error
        } catch {
            throw StarpipeError(.bucket, "S3 size of \(key) in bucket \(location.bucket) failed")
        }
    }

    public func stream(_ key: String, chunkSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws {
        try BucketKey.check(key)
        try client.stream(key, chunkSize: chunkSize, operation: "read", body)
    }

    public func put(_ key: String, _ body: (inout ObjectWriter) throws -> Void) throws {
        try BucketKey.check(key)
        let upload = S3Upload(client: client, key: key)
        do {
            var writer = ObjectWriter { bytes throws in try upload.write(bytes) }
            try body(&writer)
            try upload.finish()
        } catch {
            upload.abort()
            throw error
        }
    }

    /// Deletes an object (tests, cleanup); a missing one is not an error.
    public func delete(_ key: String) throws(StarpipeError) {
        try BucketKey.check(key)
        _ = try call("delete", key: key) { () throws(S3Failure) in try client.send(.DELETE, key: key) }
    }

    /// The multipart uploads under the bucket's prefix that were started and neither completed nor aborted, as
    /// (key, upload id): what a bucket lifecycle rule `AbortIncompleteMultipartUpload` would clean up.
    public func incompleteUploads() throws(StarpipeError) -> [(key: String, uploadID: String)] {
        var query: [(name: String, value: String)] = [("uploads", "")]
        if !location.prefix.isEmpty { query.append(("prefix", location.prefix)) }
        let response = try call("list uploads", key: nil) { () throws(S3Failure) in try client.send(.GET, key: nil, query: query) }
        guard let xml = S3XML(response.body) else {
            throw StarpipeError(.bucket, "S3 list uploads of bucket \(location.bucket) returned an unreadable answer")
        }
        return zip(xml.all("Key"), xml.all("UploadId"))
            .filter { $0.0.hasPrefix(location.prefix) }
            .map { (String($0.0.dropFirst(location.prefix.count)), $0.1) }
    }

    /// Runs one request under the retry policy and turns its failure into the bucket's error.
    func call(_ operation: String, key: String?,
              _ body: () throws(S3Failure) -> S3Client.Response) throws(StarpipeError) -> S3Client.Response {
        do {
            return try client.retry.run(body)
        } catch {
            throw error.error(operation, key: key, bucket: location.bucket)
        }
    }
}
