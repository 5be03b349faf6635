/// A growable byte buffer that is written through a raw pointer, without the per-append
/// uniqueness check of `Array`.
///
/// It is copy-on-write, but the check is explicit: ``makeUnique()`` must be called before
/// the first write of each mutating operation that may follow a copy (the encoder calls it
/// once at the start of every `feed`). Reads through ``base`` are valid until the next
/// write.
///
/// Public, and its appends `@inlinable`, because the COPY encoder in another module writes every
/// field through it (Swift 6.3 does not inline `package` functions across modules).
public struct RowBuffer: @unchecked Sendable {
    /// Owns the allocation; frees it when the last copy of the buffer goes away.
    @usableFromInline
    final class Owner {
        @usableFromInline let base: UnsafeMutablePointer<UInt8>

        @usableFromInline
        init(capacity: Int) {
            base = .allocate(capacity: capacity)
        }

        deinit {
            base.deallocate()
        }
    }

    @usableFromInline var owner: Owner
    @usableFromInline var storage: UnsafeMutablePointer<UInt8>
    @usableFromInline var written = 0
    @usableFromInline var capacity: Int

    /// The first byte. Valid until the next write.
    @inlinable public var base: UnsafeMutablePointer<UInt8> { storage }
    /// The number of bytes written.
    @inlinable public var count: Int { written }

    /// An empty buffer with room for `capacity` bytes (at least 16). Defaults to 256.
    public init(capacity: Int = 256) {
        let capacity = max(capacity, 16)
        owner = Owner(capacity: capacity)
        storage = owner.base
        self.capacity = capacity
    }

    /// Gives this copy its own allocation if another copy shares it.
    public mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&owner) {
            let copy = Owner(capacity: capacity)
            copy.base.initialize(from: storage, count: written)
            owner = copy
            storage = copy.base
        }
    }

    /// Forgets every byte from `count` on (`count` at most ``count``), keeping the allocation.
    @inlinable @inline(__always)
    public mutating func truncate(to count: Int) {
        written = min(written, count)
    }

    /// Forgets the contents, keeping the allocation.
    @inlinable @inline(__always)
    public mutating func removeAll() {
        written = 0
    }

    /// Ensures room for `additional` more bytes without reallocating.
    @inlinable @inline(__always)
    public mutating func reserve(_ additional: Int) {
        if capacity &- written < additional {
            grow(to: written + additional)
        }
    }

    /// Appends one byte.
    @inlinable @inline(__always)
    public mutating func append(_ byte: UInt8) {
        if written == capacity {
            grow(to: written + 1)
        }
        storage[written] = byte
        written &+= 1
    }

    /// Appends `n` bytes from `bytes`.
    @inlinable @inline(__always)
    public mutating func append(_ bytes: UnsafePointer<UInt8>, count n: Int) {
        if capacity &- written < n {
            grow(to: written + n)
        }
        (storage + written).initialize(from: bytes, count: n)
        written &+= n
    }

    /// Appends `self[range]` (a range of already written bytes) at the end.
    @inlinable @inline(__always)
    public mutating func appendCopy(from start: Int, to end: Int) {
        reserve(end &- start)
        (storage + written).initialize(from: storage + start, count: end &- start)
        written &+= end &- start
    }

    @usableFromInline @inline(never)
    mutating func grow(to minimum: Int) {
        var newCapacity = capacity
        while newCapacity < minimum {
            newCapacity = newCapacity > Int.max / 2 ? minimum : newCapacity * 2
        }
        let bigger = Owner(capacity: newCapacity)
        bigger.base.initialize(from: storage, count: written)
        owner = bigger
        storage = bigger.base
        capacity = newCapacity
    }
}
