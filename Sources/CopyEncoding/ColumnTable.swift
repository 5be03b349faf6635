/// Maps decoded key bytes to column indexes without creating a `String` per key.
///
/// Column names are stored pre-encoded as UTF-8 in one contiguous buffer. A lookup first
/// tries a hint (the column expected next, since rows usually repeat the same key order)
/// and otherwise probes a small open-addressing table keyed by an FNV-1a hash.
struct ColumnTable: Sendable {
    /// The column names, in COPY order.
    let names: [String]
    /// The length in bytes of the longest column name.
    let maxNameLength: Int
    private let bytes: [UInt8]
    /// `starts[c] ..< starts[c + 1]` is column `c`'s name in ``bytes``.
    private let starts: [Int]
    /// Column index + 1 per slot; 0 = empty.
    private let slots: [Int32]
    private let slotMask: Int
    /// Per column: the name's byte length if the name is its own JSON spelling (no `"`,
    /// `\`, or bytes < 0x20), else -1.
    private let plainLengths: [Int]

    /// - Precondition: `columns` has no duplicates.
    init(columns: [String]) {
        names = columns
        var bytes: [UInt8] = []
        var starts: [Int] = [0]
        var longest = 0
        for name in columns {
            bytes.append(contentsOf: name.utf8)
            starts.append(bytes.count)
            longest = max(longest, name.utf8.count)
        }
        self.bytes = bytes
        self.starts = starts
        maxNameLength = longest
        var size = 8
        while size < columns.count * 2 {
            size *= 2
        }
        var slots = [Int32](repeating: 0, count: size)
        let mask = size - 1
        bytes.withUnsafeBufferPointer { buffer in
            for column in columns.indices {
                let start = starts[column]
                let count = starts[column + 1] - start
                var slot = Self.hash(buffer.baseAddress.map { $0 + start }, count: count) & mask
                while slots[slot] != 0 {
                    let other = Int(slots[slot]) - 1
                    let otherStart = starts[other]
                    precondition(
                        !(starts[other + 1] - otherStart == count
                            && buffer[otherStart ..< otherStart + count].elementsEqual(buffer[start ..< start + count])),
                        "CopyRowEncoder: duplicate column name \(columns[column])"
                    )
                    slot = (slot + 1) & mask
                }
                slots[slot] = Int32(column + 1)
            }
        }
        self.slots = slots
        slotMask = mask
        plainLengths = columns.map { name in
            name.utf8.contains { $0 == 0x22 || $0 == 0x5C || $0 < 0x20 } ? -1 : name.utf8.count
        }
    }

    /// Whether column `c`'s UTF-8 name matches `p[0 ..< length]` immediately followed by
    /// the closing quote `p[length]`, comparing raw JSON bytes. Only names without `"`,
    /// `\` or control characters can match this way (their JSON spelling is themselves);
    /// for the others this returns `false` and the caller decodes the key.
    /// Requires `p[0 ... available - 1]` to be readable.
    @inline(__always)
    func matchesRaw(_ column: Int, _ p: UnsafePointer<UInt8>, available: Int) -> Int? {
        guard column < plainLengths.count else {
            return nil
        }
        let length = plainLengths[column]
        guard length >= 0 && length < available && p[length] == 0x22 else {
            return nil
        }
        return bytes.withUnsafeBufferPointer { buffer -> Int? in
            guard let names = buffer.baseAddress else {
                return length == 0 ? 0 : nil
            }
            let name = names + starts[column]
            var k = 0
            while k &+ 8 <= length {
                let a = UnsafeRawPointer(name + k).loadUnaligned(as: UInt64.self)
                let b = UnsafeRawPointer(p + k).loadUnaligned(as: UInt64.self)
                if a != b {
                    return nil
                }
                k &+= 8
            }
            while k < length {
                if name[k] != p[k] {
                    return nil
                }
                k &+= 1
            }
            return length
        }
    }

    /// The number of columns.
    var count: Int {
        names.count
    }

    /// The index of the column whose UTF-8 name equals `key[0 ..< count]`, or -1.
    /// `hint` is tried first (it may be out of range).
    @inline(__always)
    func index(of key: UnsafePointer<UInt8>?, count: Int, hint: Int) -> Int {
        bytes.withUnsafeBufferPointer { buffer in
            let names = buffer.baseAddress
            if hint >= 0 && hint < self.count && Self.equal(names, starts[hint], starts[hint + 1], key, count) {
                return hint
            }
            var slot = Self.hash(key, count: count) & slotMask
            while true {
                let entry = Int(slots[slot])
                if entry == 0 {
                    return -1
                }
                let column = entry - 1
                if Self.equal(names, starts[column], starts[column + 1], key, count) {
                    return column
                }
                slot = (slot + 1) & slotMask
            }
        }
    }

    @inline(__always)
    private static func equal(
        _ names: UnsafePointer<UInt8>?, _ start: Int, _ end: Int, _ key: UnsafePointer<UInt8>?, _ count: Int
    ) -> Bool {
        guard end - start == count else {
            return false
        }
        guard count > 0, let names, let key else {
            return true
        }
        var k = 0
        while k < count {
            if names[start &+ k] != key[k] {
                return false
            }
            k &+= 1
        }
        return true
    }

    @inline(__always)
    private static func hash(_ p: UnsafePointer<UInt8>?, count: Int) -> Int {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        if let p {
            var k = 0
            while k < count {
                h = (h ^ UInt64(p[k])) &* 0x0000_0100_0000_01B3
                k &+= 1
            }
        }
        return Int(truncatingIfNeeded: h ^ (h &>> 29))
    }
}
