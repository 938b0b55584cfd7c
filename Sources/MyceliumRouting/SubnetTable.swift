import MyceliumCore

/// A hash table keyed by subnet, for the router's per-subnet tables (routes, sources): open
/// addressing with linear probing, each key stored beside its value in one flat array.
///
/// Why not `Dictionary`: every Update looks a subnet up in these tables. A `Dictionary` lookup
/// seeds and runs SipHash, then reads the key and the value from two separate arrays (two cache
/// misses on a table bigger than the cache); here the hash is one multiplication and a probe
/// usually reads one slot, key and value together. In the 1000-node simulation the lookups
/// were a quarter of the time.
///
/// Hash flooding: subnets come from peers, and a peer can grind keys for subnets of its
/// choice. The bucket is `(word × a) >> (64 − log₂ capacity)` with `a` a random odd multiplier
/// drawn per table (multiply-shift, a universal family): without `a`, a peer cannot choose
/// subnets that collide here (two distinct words collide with probability at most 2/capacity).
/// That holds because distinct subnets in these tables have distinct `hashWord`s: the router
/// admits exactly /64s (low word zero) that pass the owner check, so a peer gets keys only by
/// grinding public keys; if other prefix lengths were ever admitted, `hashWord` would have to
/// stay injective for them. Callers bound the size (`RouterLimits`).
///
/// Indices (`Slot`) stay valid until the next insertion or removal, as a `Dictionary`'s do.
struct SubnetTable<Value: SubnetTableValue> {
    typealias Slot = Int

    /// A slot: key nil and value `.vacant` when empty. Neither the entry nor its value is
    /// optional: reading an optional element (or unwrapping an optional value) copied the
    /// whole element, a retain of the value's arrays and a cache miss on them per probe; a
    /// field of a plain struct element is read in place.
    fileprivate struct Entry {
        var key: Subnet?
        var value: Value
    }

    private var entries: [Entry] = []
    private(set) var count = 0
    /// log₂ of `entries.count` (0 while unallocated).
    private var bits = 0
    private let multiplier: UInt64

    init() {
        multiplier = UInt64.random(in: 1...UInt64.max) | 1
    }

    /// A fixed multiplier, for tests that need collisions (1 puts keys sharing their top bits
    /// in one cluster).
    init(multiplier: UInt64) {
        self.multiplier = multiplier | 1
    }

    var isEmpty: Bool { count == 0 }

    private var mask: Int { entries.count - 1 }

    private func bucket(_ key: Subnet) -> Int {
        Int(truncatingIfNeeded: (key.hashWord &* multiplier) >> UInt64(64 - bits))
    }

    // MARK: lookup

    func index(forKey key: Subnet) -> Slot? {
        guard count > 0 else { return nil }
        var i = bucket(key)
        while let k = entries[i].key {
            if k == key { return i }
            i = (i + 1) & mask
        }
        return nil
    }

    /// The value at `slot` (from `index(forKey:)`), read or changed in place.
    subscript(at slot: Slot) -> Value {
        _read { yield entries[slot].value }
        _modify { yield &entries[slot].value }
    }

    func key(at slot: Slot) -> Subnet { entries[slot].key! }

    subscript(key: Subnet) -> Value? {
        get { index(forKey: key).map { entries[$0].value } }
        set {
            if let newValue {
                if let i = index(forKey: key) {
                    entries[i].value = newValue
                } else {
                    insertNew(key, newValue)
                }
            } else if let i = index(forKey: key) {
                remove(at: i)
            }
        }
    }

    /// The value of `key`, inserted as `defaultValue` first if absent, changed in place.
    subscript(key: Subnet, default defaultValue: @autoclosure () -> Value) -> Value {
        get { self[key] ?? defaultValue() }
        _modify {
            let i: Slot
            if let known = index(forKey: key) { i = known } else { i = insertNew(key, defaultValue()) }
            yield &entries[i].value
        }
    }

    // MARK: changes

    /// Inserts a key known to be absent; returns its slot.
    @discardableResult
    private mutating func insertNew(_ key: Subnet, _ value: Value) -> Slot {
        if (count + 1) * 4 > entries.count * 3 { grow() }
        var i = bucket(key)
        while entries[i].key != nil { i = (i + 1) & mask }
        entries[i] = Entry(key: key, value: value)
        count += 1
        return i
    }

    private mutating func grow() {
        var old = Array(repeating: Entry(key: nil, value: .vacant), count: 1 << Swift.max(3, bits + 1))
        swap(&old, &entries)
        bits = Swift.max(3, bits + 1)
        for j in old.indices {
            guard let key = old[j].key else { continue }
            var i = bucket(key)
            while entries[i].key != nil { i = (i + 1) & mask }
            swap(&entries[i], &old[j])
        }
    }

    /// Removes the entry at `slot`, moving later entries of its probe run back so that lookups
    /// need no tombstones.
    mutating func remove(at slot: Slot) {
        precondition(entries[slot].key != nil, "no entry at this slot")
        entries[slot] = Entry(key: nil, value: .vacant)
        count -= 1
        var hole = slot
        var j = slot
        while true {
            j = (j + 1) & mask
            guard let key = entries[j].key else { return }
            let home = bucket(key)
            // The entry may move into the hole unless its home lies cyclically in (hole, j].
            let staysPut = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if staysPut { continue }
            entries.swapAt(hole, j)
            hole = j
        }
    }

    @discardableResult
    mutating func removeValue(forKey key: Subnet) -> Value? {
        guard let i = index(forKey: key) else { return nil }
        var value = Value.vacant
        swap(&value, &entries[i].value)
        remove(at: i)
        return value
    }

    /// Changes every value in place; drops the entries for which `body` returns false.
    mutating func updateAll(_ body: (Subnet, inout Value) -> Bool) {
        var dropped: [Subnet] = []
        for i in entries.indices {
            guard let key = entries[i].key else { continue }
            if !body(key, &entries[i].value) { dropped.append(key) }
        }
        for key in dropped { removeValue(forKey: key) }
    }

    // MARK: views

    /// Calls `body` with every key and its slot, in slot order: one sequential pass, where a
    /// lookup per key is a cache miss each on a table bigger than the cache.
    func forEachSlot(_ body: (Subnet, Slot) -> Void) {
        for i in entries.indices {
            if let key = entries[i].key { body(key, i) }
        }
    }

    /// The keys, in no particular order.
    var keys: [Subnet] { entries.compactMap(\.key) }
}

extension SubnetTable: Sequence {
    /// Entries in slot order (no particular order).
    func makeIterator() -> some IteratorProtocol<(key: Subnet, value: Value)> {
        entries.lazy.compactMap { e in e.key.map { (key: $0, value: e.value) } }.makeIterator()
    }

    var underestimatedCount: Int { count }
}

extension SubnetTable: Sendable where Value: Sendable {}

/// What an empty slot of a `SubnetTable` holds (no storage of its own).
protocol SubnetTableValue {
    static var vacant: Self { get }
}
extension SubnetTable.Entry: Sendable where Value: Sendable {}
