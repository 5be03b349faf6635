/// What an incremental run does with rows whose cursor (every column of it) is NULL, which no watermark can order.
public enum NullCursorPolicy: String, Sendable, CaseIterable {
    /// Stop before anything is written, naming the table and how many rows (the default): a NULL cursor is usually
    /// a column the application does not always set, and silently skipping those rows loses them.
    case fail
    /// Read them in every run, after the cursor's rows, in primary key order: nothing is lost, and each run's file
    /// holds all of them again (the promotion's upsert makes that harmless).
    case include
    /// Leave them out of every incremental run and log how many there were; only a full snapshot carries them.
    case exclude
}
