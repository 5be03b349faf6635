import StarpipeCore

extension TableCursor {
    /// Checks the cursor against the source table before anything is written: the table has a primary key (the
    /// keyset's tie-breaker, and the upsert's key), every cursor column exists and all share one timestamp type, and
    /// a zone is given exactly for `timestamp without time zone`. Returns that type, as the manifest names it.
    func check(_ table: some ExtractedTable) throws -> String {
        let name = table.name.lowercased()
        guard !table.primaryKey.isEmpty else {
            throw StarpipeError(.configuration, "source table \(table.name) has no primary key, so it cannot be read incrementally (the keyset and the upsert need one); remove incremental.tables.\(name) from the config, or give the table a primary key")
        }
        var types: [String] = []
        for column in columns {
            guard let found = table.columns.first(where: { $0.name == column }) else {
                throw StarpipeError(.configuration, "incremental.tables.\(name).cursor names column \(column), which source table \(table.name) does not have (names are case-sensitive)")
            }
            guard Self.isTimestamp(found.type) else {
                throw StarpipeError(.configuration, "incremental.tables.\(name).cursor column \(column) has type \(found.type); a cursor must be timestamp with time zone or timestamp without time zone (the high watermark is a point in the database's time)")
            }
            types.append(found.type)
        }
        guard Set(types.map { $0.hasSuffix("without time zone") }).count == 1 else {
            throw StarpipeError(.configuration, "incremental.tables.\(name).cursor mixes timestamp with and without time zone; coalesce columns of one kind")
        }
        let naive = types[0].hasSuffix("without time zone")
        if naive && timeZone == nil {
            throw StarpipeError(.configuration, "incremental.tables.\(name).cursor is timestamp without time zone: say which zone the application writes it in with incremental.tables.\(name).time_zone (UTC for most frameworks)")
        }
        if let timeZone, !Self.isZoneName(timeZone) {
            throw StarpipeError(.configuration, "incremental.tables.\(name).time_zone must be an IANA zone name such as UTC or Europe/Paris")
        }
        if !naive && timeZone != nil {
            throw StarpipeError(.configuration, "incremental.tables.\(name).time_zone is only for timestamp without time zone cursors; \(table.name)'s cursor carries its zone")
        }
        return types[0]
    }

    /// An IANA zone name's characters (`UTC`, `America/Argentina/Buenos_Aires`, `Etc/GMT+5`); the source checks the name.
    static func isZoneName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || "_+-/".utf8.contains($0)
        }
    }

    /// `timestamp[(p)] with[out] time zone`, as `format_type` names them.
    static func isTimestamp(_ type: String) -> Bool {
        guard type.hasPrefix("timestamp") else { return false }
        var rest = type.dropFirst("timestamp".count)
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")"), rest[rest.index(after: rest.startIndex)..<close].allSatisfy(\.isNumber) else {
                return false
            }
            rest = rest[rest.index(after: close)...]
        }
        return rest == " with time zone" || rest == " without time zone"
    }
}
