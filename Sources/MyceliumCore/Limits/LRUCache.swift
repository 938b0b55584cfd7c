/// A fixed-capacity map that forgets its least recently used entry to admit a new one.
///
/// O(1) lookup, insert and eviction: entries live in one array, chained from most to least
/// recently used by indices (no per-entry allocation once the array has grown to `capacity`).
/// Not thread-safe: its owner confines it (the datapath keeps one per core).
///
/// Inlinable: the datapath looks a session up per packet from another module, and unspecialized
/// it built the metadata of its result tuple at run time on every call.
public struct LRUCache<Key: Hashable, Value> {
    @usableFromInline struct Slot {
        @usableFromInline var key: Key
        @usableFromInline var value: Value
        @usableFromInline var newer: Int
        @usableFromInline var older: Int

        @inlinable init(key: Key, value: Value, newer: Int, older: Int) {
            self.key = key
            self.value = value
            self.newer = newer
            self.older = older
        }
    }

    public let capacity: Int
    @usableFromInline var slots: [Slot] = []
    @usableFromInline var index: [Key: Int] = [:]
    /// Most and least recently used slots; -1 when empty.
    @usableFromInline var newest = -1
    @usableFromInline var oldest = -1

    public init(capacity: Int) {
        precondition(capacity > 0, "an LRU cache needs room for one entry")
        self.capacity = capacity
        index.reserveCapacity(capacity)
    }

    @inlinable public var count: Int { index.count }

    /// The value for `key`, which becomes the most recently used.
    @inlinable
    public mutating func get(_ key: Key) -> Value? {
        guard let i = index[key] else { return nil }
        touch(i)
        return slots[i].value
    }

    /// Without changing the order (inspection, tests).
    @inlinable
    public func peek(_ key: Key) -> Value? {
        index[key].map { slots[$0].value }
    }

    /// Stores `value`; returns the entry evicted to make room, if any.
    @discardableResult
    @inlinable
    public mutating func set(_ key: Key, _ value: Value) -> (key: Key, value: Value)? {
        if let i = index[key] {
            slots[i].value = value
            touch(i)
            return nil
        }
        if slots.count < capacity {
            slots.append(Slot(key: key, value: value, newer: -1, older: -1))
            let i = slots.count - 1
            index[key] = i
            pushNewest(i)
            return nil
        }
        // Full: reuse the oldest slot in place.
        let i = oldest
        let evicted = (key: slots[i].key, value: slots[i].value)
        unlink(i)
        index[evicted.key] = nil
        slots[i].key = key
        slots[i].value = value
        index[key] = i
        pushNewest(i)
        return evicted
    }

    /// Changes the value for `key` in place (no copy of a collection it holds), inserting
    /// `make()` first if absent; the entry becomes the most recently used.
    @discardableResult
    @inlinable
    public mutating func modify<R>(_ key: Key, default make: @autoclosure () -> Value,
                                   _ body: (inout Value) -> R) -> (evicted: (key: Key, value: Value)?, result: R) {
        if let i = index[key] {
            touch(i)
            return (nil, body(&slots[i].value))
        }
        let evicted = set(key, make())
        return (evicted, body(&slots[newest].value))
    }

    /// Changes an existing value in place; nil when `key` is absent.
    @inlinable
    public mutating func modifyExisting<R>(_ key: Key, _ body: (inout Value) -> R) -> R? {
        guard let i = index[key] else { return nil }
        touch(i)
        return body(&slots[i].value)
    }

    /// Removes `key`; its slot is reused by the next insertion.
    @discardableResult
    @inlinable
    public mutating func remove(_ key: Key) -> Value? {
        guard let i = index.removeValue(forKey: key) else { return nil }
        unlink(i)
        let value = slots[i].value
        // Move the last slot into the hole so `slots` stays dense.
        let last = slots.count - 1
        if i != last {
            slots.swapAt(i, last)
            index[slots[i].key] = i
            let newer = slots[i].newer, older = slots[i].older
            if newer >= 0 { slots[newer].older = i } else { newest = i }
            if older >= 0 { slots[older].newer = i } else { oldest = i }
        }
        slots.removeLast()
        return value
    }

    /// Every entry, in no particular order.
    @inlinable
    public func forEachEntry(_ body: (Key, Value) -> Void) {
        for slot in slots { body(slot.key, slot.value) }
    }

    /// Every value, in no particular order.
    @inlinable
    public func forEachValue(_ body: (Value) -> Void) {
        for i in index.values { body(slots[i].value) }
    }

    /// Changes every value in place, in no particular order.
    @inlinable
    public mutating func updateEach(_ body: (Key, inout Value) -> Void) {
        for i in slots.indices where index[slots[i].key] == i { body(slots[i].key, &slots[i].value) }
    }

    /// Keys from most to least recently used (tests, inspection).
    @inlinable
    public var keysByRecency: [Key] {
        var keys: [Key] = []
        keys.reserveCapacity(count)
        var i = newest
        while i >= 0 {
            keys.append(slots[i].key)
            i = slots[i].older
        }
        return keys
    }

    @inlinable mutating func touch(_ i: Int) {
        guard i != newest else { return }
        unlink(i)
        pushNewest(i)
    }

    @inlinable mutating func unlink(_ i: Int) {
        let newer = slots[i].newer, older = slots[i].older
        if newer >= 0 { slots[newer].older = older } else { newest = older }
        if older >= 0 { slots[older].newer = newer } else { oldest = newer }
        slots[i].newer = -1
        slots[i].older = -1
    }

    @inlinable mutating func pushNewest(_ i: Int) {
        slots[i].older = newest
        slots[i].newer = -1
        if newest >= 0 { slots[newest].newer = i }
        newest = i
        if oldest < 0 { oldest = i }
    }
}
