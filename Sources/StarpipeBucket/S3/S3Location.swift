import Foundation
import StarpipeCore

/// Where an S3 bucket lives and how to talk to it, from
/// `s3://BUCKET/PREFIX?region=R&endpoint=URL&path_style=true|false&part_size=BYTES&checksum=sha256`.
public struct S3Location: Sendable, Equatable {
    /// The bucket name.
    public var bucket: String
    /// Prepended to every key: empty, or ending in `/`.
    public var prefix: String
    /// The signing region. Defaults to `AWS_REGION`, then `us-east-1`.
    public var region: String
    /// `http` or `https`. Defaults to `https`.
    public var scheme: String
    /// The endpoint host (without the bucket). Defaults to `s3.<region>.amazonaws.com`.
    public var host: String
    /// The endpoint port, when not the scheme's default.
    public var port: Int?
    /// Path-style addressing (`host/bucket/key`) instead of virtual-hosted (`bucket.host/key`).
    /// Defaults to true with an `endpoint` (MinIO, Ceph and moto want it), false on AWS.
    public var pathStyle: Bool
    /// Bytes per multipart part, and the size from which an upload is multipart. Defaults to 16 MiB;
    /// S3 requires at least 5 MiB for every part but the last.
    public var partSize: Int
    /// Send `x-amz-checksum-sha256` on uploads too (Content-MD5 is always sent). Defaults to false, since some
    /// S3-compatible stores refuse checksum headers.
    public var checksumSHA256: Bool

    /// The default part size, 16 MiB.
    public static let defaultPartSize = 16 << 20

    public init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(StarpipeError) {
        guard let components = URLComponents(string: url), components.scheme?.lowercased() == "s3",
              let bucket = components.host, !bucket.isEmpty else {
            throw StarpipeError(.configuration, "S3 bucket URL must look like s3://BUCKET/PREFIX?region=R&endpoint=URL")
        }
        self.bucket = bucket
        let path = components.path.split(separator: "/").joined(separator: "/")
        prefix = path.isEmpty ? "" : path + "/"
        if !prefix.isEmpty { try BucketKey.check(String(prefix.dropLast())) }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        let known: Set = ["region", "endpoint", "path_style", "part_size", "checksum"]
        if let unknown = query.keys.sorted().first(where: { !known.contains($0) }) {
            throw StarpipeError(.configuration, "S3 bucket URL: unknown parameter \(unknown) (known: \(known.sorted().joined(separator: ", ")))")
        }
        region = query["region"] ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        if let endpoint = query["endpoint"] {
            guard let parsed = URLComponents(string: endpoint), let scheme = parsed.scheme?.lowercased(),
                  ["http", "https"].contains(scheme), let host = parsed.host, !host.isEmpty,
                  parsed.path.isEmpty || parsed.path == "/" else {
                throw StarpipeError(.configuration, "S3 bucket URL: endpoint must be http(s)://host[:port]")
            }
            self.scheme = scheme
            self.host = host
            port = parsed.port
        } else {
            scheme = "https"
            host = "s3.\(region).amazonaws.com"
            port = nil
        }
        switch query["path_style"] {
        case nil: pathStyle = query["endpoint"] != nil
        case "true": pathStyle = true
        case "false": pathStyle = false
        default: throw StarpipeError(.configuration, "S3 bucket URL: path_style is true or false")
        }
        if let text = query["part_size"] {
            guard let size = Int(text), size > 0 else {
                throw StarpipeError(.configuration, "S3 bucket URL: part_size is a positive number of bytes")
            }
            partSize = size
        } else {
            partSize = Self.defaultPartSize
        }
        switch query["checksum"] {
        case nil, "md5": checksumSHA256 = false
        case "sha256": checksumSHA256 = true
        default: throw StarpipeError(.configuration, "S3 bucket URL: checksum is md5 (Content-MD5 only) or sha256")
        }
    }

    /// The `Host` header: the endpoint, with the bucket in front when virtual-hosted.
    var hostHeader: String {
        let name = pathStyle ? host : "\(bucket).\(host)"
        return port.map { "\(name):\($0)" } ?? name
    }

    /// The encoded request path of an object (with the prefix), or of the bucket when `key` is nil.
    func encodedPath(key: String?) -> String {
        let bucketPart = pathStyle ? "/" + S3URIEncoding.encode(bucket) : ""
        guard let key else { return bucketPart.isEmpty ? "/" : bucketPart }
        return bucketPart + "/" + S3URIEncoding.encode(prefix + key, keepSlash: true)
    }

    /// `scheme://host[:port]` to send requests to.
    var origin: String { "\(scheme)://\(hostHeader)" }
}
