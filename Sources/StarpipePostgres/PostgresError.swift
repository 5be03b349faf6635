/// An error from the Postgres client: connecting, running a statement or streaming COPY.
///
/// `description` is safe to log: for data errors (SQLSTATE classes 22 and 23) the server's message,
/// which can quote the offending value (possibly PHI), is shown only in one of Postgres's own value-free shapes, cut
/// before any quoted value (``valueFreeMessage``), else replaced by a generic phrase.
/// The server's full text stays in `debugDescription` for local debugging only.
public struct PostgresError: Error, CustomStringConvertible, CustomDebugStringConvertible, Sendable {
    /// A stable category of the failure.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Sendable {
            case connection, statement, copy
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }
        /// Could not connect, or the connection broke.
        public static let connection = Code(.connection)
        /// The server rejected a statement.
        public static let statement = Code(.statement)
        /// A COPY stream failed.
        public static let copy = Code(.copy)
        public var description: String { base.rawValue }
    }

    /// What failed.
    public var code: Code
    /// The five-character SQLSTATE, when the server sent one.
    public var sqlState: String?

    /// The SQLSTATE, when it is one starpipe tells apart.
    public var state: SQLState? { sqlState.flatMap(SQLState.init(rawValue:)) }
    /// The server's (or libpq's) primary message.
    public var serverMessage: String
    /// The server's DETAIL field.
    public var detail: String?
    /// The server's HINT field.
    public var hint: String?
    /// The server's CONTEXT field (for COPY: "COPY t, line N, column c: …").
    public var context: String?

    public init(code: Code, sqlState: String? = nil, serverMessage: String, detail: String? = nil,
                hint: String? = nil, context: String? = nil) {
        self.code = code
        self.sqlState = sqlState
        self.serverMessage = serverMessage
        self.detail = detail
        self.hint = hint
        self.context = context
    }

    /// True for data exceptions and integrity violations, whose server text may quote values.
    public var mayQuoteValues: Bool {
        guard let state = sqlState else { return false }
        return state.hasPrefix("22") || state.hasPrefix("23")
    }

    /// True when the server's text is known to hold no row values and may be shown: starpipe's own
    /// errors (class SP, or any code raised by the extension itself), connection and resource problems, shutdowns, lock and serialization failures, and SQL
    /// or object errors (which name objects, not values). Anything else, such as a production trigger's
    /// `RAISE EXCEPTION '… %', NEW.ssn`, shows its SQLSTATE only.
    public var messageIsSafe: Bool {
        guard let state = sqlState else { return true }
        if raisedByStarpipe { return true }
        return ["SP", "08", "53", "57", "40", "42", "55", "0A"].contains(String(state.prefix(2)))
    }

    /// True for starpipe's own errors (SQLSTATE class SP), whose texts never hold values.
    public var isStarpipeError: Bool { sqlState?.hasPrefix("SP") ?? false }

    /// True when the extension raised the error itself, whatever its SQLSTATE (`P0002` "job 42 does not exist",
    /// `22023` for a bad setting): the innermost frame of the server's CONTEXT is `starpipe._raise`, which only the
    /// extension's own functions may call and whose texts, like class SP's, never hold a row value.
    public var raisedByStarpipe: Bool {
        guard let context else { return false }
        return context.hasPrefix("PL/pgSQL function starpipe._raise(")
    }

    /// True when retrying later may succeed: connection failures, resource shortages, shutdowns,
    /// serialization failures and deadlocks.
    public var isTransient: Bool {
        if code == .connection { return true }
        guard let sqlState else { return false }
        // Classes 08 (connection exception) and 53 (insufficient resources), then single codes.
        if sqlState.hasPrefix("08") || sqlState.hasPrefix("53") { return true }
        switch state {
        case .adminShutdown, .crashShutdown, .cannotConnectNow, .serializationFailure, .deadlockDetected, .lockNotAvailable:
            return true
        default:
            return false
        }
    }

    public var description: String {
        let state = sqlState.map { " (SQLSTATE \($0))" } ?? ""
        if raisedByStarpipe && !isStarpipeError {
            return "\(code): \(serverMessage)\(state)" + (detail.flatMap { $0.isEmpty ? nil : ": \($0)" } ?? "")
        }
        if mayQuoteValues {
            if let message = valueFreeMessage { return "\(code): \(message)\(state)" }
            return "\(code): a value was rejected by the database\(state)"
        }
        if !messageIsSafe {
            return "\(code): the database raised an error\(state)"
        }
        var text = "\(code): \(serverMessage)\(state)"
        if isStarpipeError, let detail, !detail.isEmpty {
            text += ": \(detail)"
        }
        return text
    }

    public var debugDescription: String {
        var parts = ["\(code)", sqlState ?? "-", serverMessage]
        if let detail { parts.append("DETAIL: \(detail)") }
        if let hint { parts.append("HINT: \(hint)") }
        if let context { parts.append("CONTEXT: \(context)") }
        return parts.joined(separator: " | ")
    }
}
