import Foundation
import StarpipeCore

/// An SQS queue, from `sqs://HOST[:PORT]/ACCOUNT/QUEUE?region=R&scheme=http|https`: the queue URL
/// `https://HOST/ACCOUNT/QUEUE` with `sqs://` in front (`scheme=http` for a local test peer).
public struct SQSLocation: Sendable, Equatable {
    /// The queue URL SQS knows the queue by.
    public var queueURL: String
    /// The signing region. Defaults to the `sqs.<region>.amazonaws.com` host's region, else `AWS_REGION`, else `us-east-1`.
    public var region: String
    /// `scheme://host[:port]`, where requests go.
    var origin: String
    /// The `Host` header.
    var hostHeader: String

    public init(url: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws(StarpipeError) {
        guard let components = URLComponents(string: url), components.scheme?.lowercased() == "sqs",
              let host = components.host, !host.isEmpty,
              components.path.split(separator: "/").count == 2 else {
            throw StarpipeError(.configuration, "SQS URL must look like sqs://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE?region=R")
        }
        var query: [String: String] = [:]
        for item in components.queryItems ?? [] { query[item.name] = item.value ?? "" }
        if let unknown = query.keys.sorted().first(where: { !["region", "scheme"].contains($0) }) {
            throw StarpipeError(.configuration, "SQS URL: unknown parameter \(unknown) (known: region, scheme)")
        }
        let scheme = query["scheme"] ?? "https"
        guard ["http", "https"].contains(scheme) else { throw StarpipeError(.configuration, "SQS URL: scheme is http or https") }
        let hostRegion = host.hasPrefix("sqs.") && host.hasSuffix(".amazonaws.com")
            ? String(host.dropFirst(4).dropLast(14)) : nil
        region = query["region"] ?? hostRegion ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        hostHeader = components.port.map { "\(host):\($0)" } ?? host
        origin = "\(scheme)://\(hostHeader)"
        queueURL = origin + components.path
    }
}
