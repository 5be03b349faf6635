/// How far a job has come (`starpipe.job.stage`); a requeued job resumes from its stage.
public enum JobStage: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Known to the ledger; its data file is not loaded yet.
    case registered
    /// Its raw version is loaded and checked against the manifest.
    case rawLoaded = "raw_loaded"
    /// Transformed into staging with the client's mapping.
    case transformed
    /// Staging passed the validation gates.
    case validated
    /// Promoted into production.
    case promoted

    /// The ledger's spelling, e.g. `raw_loaded`.
    public var description: String { rawValue }
}
