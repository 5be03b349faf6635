/// An error of starpipe's own making, with a stable code.
///
/// Messages name files, rows and columns but never values from the data, which may be PHI.
public struct StarpipeError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A stable category; new categories do not break callers that switch on known ones.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        /// A name (client, table, run id) that cannot be used safely.
        public static let invalidName = Code("invalid_name")
        /// A bucket key that does not follow the key layout.
        public static let invalidKey = Code("invalid_key")
        /// A manifest that cannot be read or fails its checks.
        public static let invalidManifest = Code("invalid_manifest")
        /// A data file that does not match its manifest (size, checksum, row count).
        public static let integrity = Code("integrity")
        /// A data file whose content cannot be loaded (syntax, types, columns).
        public static let badData = Code("bad_data")
        /// A bucket operation failed in a way that may pass when tried again (connection lost, 5xx, throttling).
        public static let bucket = Code("bucket")
        /// The bucket refused an operation for good (access denied, no such key or bucket, invalid request):
        /// trying again cannot help.
        public static let bucketRefused = Code("bucket_refused")
        /// A configuration value or flag is wrong.
        public static let configuration = Code("configuration")
        /// The source database could not be read.
        public static let source = Code("source")
        public var description: String { name }
    }

    /// What went wrong, by category.
    public var code: Code
    /// A message fit for logs and the job ledger.
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
