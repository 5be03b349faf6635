import StarpipeCore

/// What went wrong with one S3 request, and whether trying again may help.
struct S3Failure: Error {
    /// The HTTP status, or nil when no response arrived (connection lost, timeout).
    var status: Int?
    /// S3's error code (`NoSuchKey`, `SlowDown`, …), when the body carried one.
    var code: String?
    /// What the transport reported when there was no response (never a header or the body).
    var transport: String?

    init(status: Int?, code: String?, transport: String? = nil) {
        self.status = status
        self.code = code
        self.transport = transport
    }

    /// 5xx, 429, `SlowDown`, `RequestTimeout`, `InternalError` and a lost connection are transient; the rest
    /// (403, 404, `NoSuchKey`, `InvalidPart`, …) would fail again the same way.
    var isTransient: Bool {
        if let code, ["SlowDown", "InternalError", "RequestTimeout", "ServiceUnavailable", "RequestTimeTooSkewed"].contains(code) {
            return true
        }
        guard let status else { return true }
        return status >= 500 || status == 429
    }

    /// The error the bucket throws: named by operation and key, never carrying a secret or a value. Transient
    /// failures keep the `.bucket` code (retried by callers); permanent ones are `.bucketRefused`.
    func error(_ operation: String, key: String?, bucket: String) -> StarpipeError {
        var what = "S3 \(operation)"
        if let key { what += " of \(key)" }
        what += " in bucket \(bucket) failed"
        var reasons: [String] = []
        if let code { reasons.append(code) }
        if let status { reasons.append("HTTP \(status)") }
        if let transport { reasons.append(transport) }
        if !reasons.isEmpty { what += ": " + reasons.joined(separator: ", ") }
        return StarpipeError(isTransient ? .bucket : .bucketRefused, what)
    }
}
