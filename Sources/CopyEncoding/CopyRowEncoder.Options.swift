extension CopyRowEncoder {
    /// Limits and output shape for a ``CopyRowEncoder``.
    public struct Options: Sendable {
        /// Maximum nesting depth of objects/arrays inside one value. Defaults to 512.
        ///
        /// A value `[[1]]` has depth 2; the row object itself does not count. The depth is
        /// tracked on an explicit stack, so exceeding it fails with
        /// ``JSONStreamError/Code/depthExceeded`` however deep the input goes.
        public var maxDepth: Int
        /// Maximum bytes of one encoded value (string or nested JSON text). Defaults to 64 MiB.
        ///
        /// Counted on the COPY-escaped output of the value, so `\\` counts as two bytes.
        /// Exceeding it fails with ``JSONStreamError/Code/valueTooLarge`` before the buffer
        /// grows past the limit.
        public var maxValueBytes: Int
        /// Append the 1-based source row number as an extra last COPY column. Defaults to true.
        public var appendRowNumber: Bool

        /// Creates options; see the properties for what each one means.
        public init(maxDepth: Int = 512, maxValueBytes: Int = 64 << 20, appendRowNumber: Bool = true) {
            self.maxDepth = maxDepth
            self.maxValueBytes = maxValueBytes
            self.appendRowNumber = appendRowNumber
        }
    }
}
