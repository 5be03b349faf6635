import Foundation

/// What an S3 event notification (the body of an SQS message) says, as far as the worker cares.
public enum S3EventNotification: Equatable, Sendable {
    /// `s3:TestEvent`, sent when a notification is configured: nothing to do.
    case test
    /// Objects created, as bucket keys relative to `prefix` (keys outside it are left out), form-decoded.
    case created([String])
    /// Not an S3 event notification, or one that cannot be read: a poison message.
    case unreadable

    /// Decodes a message body; `prefix` is the bucket URL's prefix (empty or ending in `/`), `bucket` its name.
    public static func decode(_ body: String, bucket: String, prefix: String) -> S3EventNotification {
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any] else { return .unreadable }
        if object["Event"] as? String == "s3:TestEvent" { return .test }
        guard let records = object["Records"] as? [[String: Any]] else { return .unreadable }
        var keys: [String] = []
        for record in records {
            guard let name = record["eventName"] as? String, let s3 = record["s3"] as? [String: Any],
                  let object = s3["object"] as? [String: Any], let encoded = object["key"] as? String,
                  let key = S3URIEncoding.formDecode(encoded) else { return .unreadable }
            // Only creations make work; another bucket's events (a shared queue) are not ours.
            guard name.hasPrefix("ObjectCreated:"), (s3["bucket"] as? [String: Any])?["name"] as? String == bucket,
                  key.hasPrefix(prefix) else { continue }
            keys.append(String(key.dropFirst(prefix.count)))
        }
        return .created(keys)
    }
}
