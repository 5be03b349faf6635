extension PostgresError {
    /// The server's message for a data error (classes 22 and 23) when it has one of Postgres's own shapes whose text
    /// holds names but no value, with the part that quotes a value cut off (`invalid input syntax for type uuid: "…"`
    /// becomes `invalid input syntax for type uuid`); nil for any other text, which then shows its SQLSTATE only.
    ///
    /// Class 23's messages name the constraint, table or column and keep the row in DETAIL, which is never shown;
    /// class 22's either name a type or quote the value last. Matching whole messages, not prefixes, keeps out a
    /// trigger's `RAISE … USING ERRCODE` text unless it mimics one of these shapes exactly.
    public var valueFreeMessage: String? {
        guard mayQuoteValues else { return nil }
        // Compiled per call: errors are rare, and a Regex is not Sendable to keep in a static.
        for shape in Self.valueFreeShapes {
            guard let pattern = try? Regex(shape.pattern).dotMatchesNewlines() else { continue }
            if let match = serverMessage.wholeMatch(of: pattern) {
                return shape.keep.map { String(serverMessage[serverMessage.startIndex..<match.output[$0].range!.upperBound]) }
                    ?? serverMessage
            }
        }
        return nil
    }

    /// Whole-message patterns; `keep` is the capture group the message is cut after (nil: the whole message).
    private static let valueFreeShapes: [(pattern: String, keep: Int?)] = [
        (#"duplicate key value violates unique constraint "[^"]+""#, nil),
        (#"null value in column "[^"]+" of relation "[^"]+" violates not-null constraint"#, nil),
        (#"new row for relation "[^"]+" violates check constraint "[^"]+""#, nil),
        (#"insert or update on table "[^"]+" violates foreign key constraint "[^"]+""#, nil),
        (#"update or delete on table "[^"]+" violates foreign key constraint "[^"]+" on table "[^"]+""#, nil),
        (#"conflicting key value violates exclusion constraint "[^"]+""#, nil),
        (#"value for domain [^ "]+ violates check constraint "[^"]+""#, nil),
        (#"domain [^ "]+ does not allow null values"#, nil),
        (#"value too long for type [a-z ]+\(\d+\)"#, nil),
        (#"numeric field overflow|division by zero|(small|big)?int(eger)? out of range|value out of range: (overflow|underflow)"#, nil),
        (#"(timestamp|date|interval) out of range"#, nil),
        (#"invalid input syntax for type json"#, nil),
        (#"(invalid input syntax for type [a-z0-9_ ]+): ".*""#, 1),
        (#"(invalid input value for enum [^ :"]+): ".*""#, 1),
        (#"(date/time field value out of range): ".*""#, 1),
        (#"(invalid byte sequence for encoding "[^"]+"): .*"#, 1),
    ]
}
