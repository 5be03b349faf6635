import StarpipeCore

/// A source that could not be connected to, and whether trying again later may help (refused, timed out, too many
/// connections, starting up) or cannot (a wrong password, a missing database, a certificate that fails its check).
struct SourceConnectionError: Error, CustomStringConvertible {
    /// What failed, fit for logs: the source's address without its password, and the client library's message.
    var message: String
    var isTransient: Bool

    var description: String { message }

    /// The error a run stops with once the tries are spent.
    var final: StarpipeError { StarpipeError(.source, message) }
}
