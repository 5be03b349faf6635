/// A growable byte buffer that is written through a raw pointer, without the per-append
/// uniqueness check of `Array`.
///
/// It is copy-on-write, but the check is explicit: ``makeUnique()`` must be called before
/// the first write of each mutating operation that may follow a copy (the encoder calls it
/// once at the start of every `feed`). Reads through ``base`` are valid until the next
/// write.
struct RowBuffer: @unchecked Sendable {
    /// Owns the allocation; frees it when the last copy of the buffer goes away.
    private final class Owner {
        let base: UnsafeMutablePointer<UInt8>

        init(capacity: Int) {
            base = .allocate(capacity: capacity)
        }

        deinit {
            base.deallocate()
        }
    }

    private var owner: Owner
    /// The first byte. Valid until the next write.
    private(set) var base: UnsafeMutablePointer<UInt8>
    /// The number of bytes written.
    private(set) var count = 0
    private var capacity: Int

    init(capacity: Int = 256) {
        let capacity = max(capacity, 16)
        owner = Owner(capacity: capacity)
        base = owner.base
        self.capacity = capacity
    }

    /// Gives this copy its own allocation if another copy shares it.
    mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&owner) {
            let copy = Owner(capacity: capacity)
            copy.base.initialize(from: base, count: count)
            owner = copy
            base = copy.base
        }
    }

    /// Forgets the contents, keeping the allocation.
    @inline(__always)
    mutating func removeAll() {
        count = 0
    }

    /// Ensures room for `additional` more bytes without reallocating.
    @inline(__always)
    mutating func reserve(_ additional: Int) {
        if capacity &- count < additional {
            grow(to: count + additional)
        }
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        if count == capacity {
            grow(to: count + 1)
        }
        base[count] = byte
        count &+= 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafePointer<UInt8>, count n: Int) {
        if capacity &- count < n {
            grow(to: count + n)
        }
        (base + count).initialize(from: bytes, count: n)
        count &+= n
    }

    /// Appends `self[range]` (a range of already written bytes) at the end.
    @inline(__always)
    mutating func appendCopy(from start: Int, to end: Int) {
        reserve(end &- start)
        (base + count).initialize(from: base + start, count: end &- start)
        count &+= end &- start
    }

    @inline(never)
    private mutating func grow(to minimum: Int) {
        var newCapacity = capacity
        while newCapacity < minimum {
            newCapacity = newCapacity > Int.max / 2 ? minimum : newCapacity * 2
        }
        let bigger = Owner(capacity: newCapacity)
        bigger.base.initialize(from: base, count: count)
        owner = bigger
        base = bigger.base
        capacity = newCapacity
    }
}
