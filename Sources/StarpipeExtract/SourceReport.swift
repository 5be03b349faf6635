import StarpipeCore

/// What `--dry-run` finds in the source: each selected table as the extractor would describe it, or why it cannot.
public struct SourceReport: Sendable {
    /// One table of the source.
    public struct Table: Sendable {
        /// Name at the source.
        public var name: String
        /// Columns with their manifest types; empty when the table cannot be described.
        public var columns: [Manifest.Column]
        /// Primary key column names; empty when there is none.
        public var primaryKey: [String]
        /// Why the table cannot be extracted (a type or value it cannot carry), or nil.
        public var problem: String?
    }

    /// `source.kind` of the manifests a run would write.
    public var kind: String
    /// Tables in the order a run reads them.
    public var tables: [Table]
}
