import Foundation
import StarpipeCore

/// Object storage holding data files and manifests under bucket keys.
///
/// Keys use `/` separators and never start with `/` or contain `..` segments.
public protocol Bucket: Sendable {
    /// Every key in the bucket, sorted.
    func list() throws(StarpipeError) -> [String]
    /// The whole object; for small objects such as manifests.
    func read(_ key: String) throws(StarpipeError) -> Data
    /// The object's size in bytes, or nil when it does not exist.
    func size(_ key: String) throws(StarpipeError) -> Int64?
    /// Streams the object to `body` in chunks of at most `chunkSize` bytes, in order.
    func stream(_ key: String, chunkSize: Int, _ body: (UnsafeRawBufferPointer) throws -> Void) throws
    /// Writes an object atomically: readers see the whole object or none of it.
    func put(_ key: String, _ body: (inout ObjectWriter) throws -> Void) throws
}

/// Buckets by URL: `file:///absolute/dir` is a local directory; `s3://BUCKET/PREFIX?region=R&endpoint=URL&path_style=…`
/// is S3 or a store that speaks its API (``S3Location``), with credentials from the environment
/// (``AWSCredentials/fromEnvironment(_:)``).
public enum BucketFactory {
    /// Opens the bucket a URL names.
    public static func open(_ url: String) throws(StarpipeError) -> any Bucket {
        guard let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased() else {
            throw StarpipeError(.configuration, "bucket URL is not a URL (expected file:///dir or s3://bucket/prefix)")
        }
        switch scheme {
        case "file":
            guard !parsed.path.isEmpty else {
                throw StarpipeError(.configuration, "file bucket URL needs an absolute path, e.g. file:///var/starpipe/bucket")
            }
            return LocalBucket(root: parsed.path)
        case "s3":
            return S3Bucket(location: try S3Location(url: url), credentials: try AWSCredentials.fromEnvironment())
        default:
            throw StarpipeError(.configuration, "bucket scheme \(scheme) is not supported (use file:///dir or s3://bucket/prefix)")
        }
    }
}

/// Validates a bucket key: relative, `/`-separated, no empty, `.` or `..` segments, no NUL.
public enum BucketKey {
    public static func check(_ key: String) throws(StarpipeError) {
        let segments = key.split(separator: "/", omittingEmptySubsequences: false)
        guard !key.isEmpty, !key.utf8.contains(0),
              segments.allSatisfy({ !$0.isEmpty && $0 != "." && $0 != ".." }) else {
            throw StarpipeError(.invalidKey, "bucket key is not a safe relative key")
        }
    }
}
