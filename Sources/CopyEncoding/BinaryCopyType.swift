/// A column type the binary COPY transcoder can encode, from the type's SQL name.
public enum BinaryCopyType: Sendable, Equatable {
    case text, json, jsonb, boolean, int2, int4, int8, float4, float8, numeric, date, timestamp, timestamptz, uuid

    /// The type for a `format_type` name (`character varying(20)`, `numeric(12,2)`, …); nil when the
    /// transcoder does not handle it (the load then uses text COPY).
    public init?(sqlName: String) {
        let base = sqlName.split(separator: "(", maxSplits: 1).first.map { String($0).trimmingSpaces() } ?? sqlName
        switch base {
        // Not `name`: its binary input rejects long values that its text input truncates.
        case "text", "character varying", "character": self = .text
        case "json": self = .json
        case "jsonb": self = .jsonb
        case "boolean": self = .boolean
        case "smallint": self = .int2
        case "integer": self = .int4
        case "bigint": self = .int8
        case "real": self = .float4
        case "double precision": self = .float8
        case "numeric": self = .numeric
        case "date": self = .date
        case "timestamp without time zone": self = .timestamp
        case "timestamp with time zone": self = .timestamptz
        case "uuid": self = .uuid
        default: return nil
        }
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var text = Substring(self)
        while text.first == " " { text.removeFirst() }
        while text.last == " " { text.removeLast() }
        return String(text)
    }
}
