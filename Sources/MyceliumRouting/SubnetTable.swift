import MyceliumCore

/// A hash table keyed by /64, for the router's per-subnet tables (routes, sources): the
/// entries (key beside value) packed in one dense array, found through a small open-addressed
/// index of 8-byte slots (linear probing, load at most 3/4).
///
/// ```
/// index: [ 0 | h₁·p₁+1 | 0 | 0 | h₂·p₂+1 | … ]   slot: hash (high 32 bits) | position + 1 (low 32)
///                 │                 │
/// dense: [ (word, value) at p₁ … (word, value) at p₂ … ]   count entries, no holes
/// ```
///
/// Keys are IPv6 /64s, the only subnets the router admits (routes and what it announces), and
/// a key is stored as its network word (the address's high 64 bits): 8 bytes, where a `Subnet`
/// takes 24. Looking up any other subnet finds nothing; inserting one is a programming error.
///
/// Why not `Dictionary`: every Update looks a subnet up in these tables. A `Dictionary` lookup
/// seeds and runs SipHash, then reads the key and the value from two separate arrays; here the
/// hash is one multiplication, the index slot's stored hash rules out other keys without
/// reading them, and the key and value are read together.
///
/// Why dense: a router holds one entry per subnet of the network in each table, so these
/// tables are most of a node's memory per route. Open addressing over the entries themselves
/// left 1/4 to 5/8 of every (80–96-byte) slot empty; here the empty space is in 8-byte index
/// slots, and the dense array grows by an eighth at a time. The 1000-node simulation holds
/// 2 × 10⁶ entries.
///
/// Hash flooding: subnets come from peers, and a peer can grind keys for subnets of its
/// choice. The hash is the high half of `word × a` and the bucket its top bits, with `a` a
/// random odd multiplier drawn per table (multiply-shift, a universal family): without `a`, a
/// peer cannot choose subnets that collide here (two distinct words collide with probability
/// at most 2/capacity). Callers bound the size (`RouterLimits`).
///
/// Positions (`Slot`) stay valid until the next removal (a removal moves the last entry into
/// the hole); callers treat them as valid until the next insertion or removal, as a
/// `Dictionary`'s indices. Iteration is in position order: no particular order.
struct SubnetTable<Value: SubnetTableValue> {
    typealias Slot = Int

    fileprivate struct Entry {
        /// The /64's network word.
        var word: UInt64
        var value: Value

        var key: Subnet { Subnet(IPv6Address(high: word, low: 0), prefixLength: 64)! }
    }

    /// 0 when empty, else the key's hash (high 32 bits) and its position + 1 (low 32 bits).
    private var index: [UInt64] = []
    private var dense: [Entry] = []
    /// log₂ of `index.count` (0 while unallocated).
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

    var count: Int { dense.count }
    var isEmpty: Bool { dense.isEmpty }

    private var mask: Int { index.count - 1 }

    /// The stored form of `key`: its network word, or nil when it is not an IPv6 /64.
    private static func word(_ key: Subnet) -> UInt64? {
        guard key.prefixLength == 64, case let .v6(a) = key.address else { return nil }
        return a.high
    }

    private func hash(_ word: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: (word &* multiplier) >> 32)
    }

    private func bucket(_ hash: UInt32) -> Int {
        Int(truncatingIfNeeded: hash >> UInt32(32 - bits))
    }

    private static func position(_ slot: UInt64) -> Int { Int(truncatingIfNeeded: slot & 0xFFFF_FFFF) - 1 }

    // MARK: lookup

    func index(forKey key: Subnet) -> Slot? {
        guard !dense.isEmpty, let word = Self.word(key) else { return nil }
        let h = hash(word)
        var i = bucket(h)
        while true {
            let s = index[i]
            if s == 0 { return nil }
            if UInt32(truncatingIfNeeded: s >> 32) == h {
                let p = Self.position(s)
                if dense[p].word == word { return p }
            }
            i = (i + 1) & mask
        }
    }

    /// The index slot that points at `position`.
    private func indexSlot(of position: Int) -> Int {
        let target = UInt64(position + 1)
        var i = bucket(hash(dense[position].word))
        while index[i] & 0xFFFF_FFFF != target { i = (i + 1) & mask }
        return i
    }

    /// The value at `slot` (from `index(forKey:)`), read or changed in place.
    subscript(at slot: Slot) -> Value {
        _read { yield dense[slot].value }
        _modify { yield &dense[slot].value }
    }

    func key(at slot: Slot) -> Subnet { dense[slot].key }

    subscript(key: Subnet) -> Value? {
        get { index(forKey: key).map { dense[$0].value } }
        set {
            if let newValue {
                if let i = index(forKey: key) {
                    dense[i].value = newValue
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
            yield &dense[i].value
        }
    }

    // MARK: changes

    /// Inserts a key known to be absent; returns its position.
    @discardableResult
    private mutating func insertNew(_ key: Subnet, _ value: Value) -> Slot {
        guard let word = Self.word(key) else { preconditionFailure("SubnetTable holds IPv6 /64s only, not \(key)") }
        if (dense.count + 1) * 4 > index.count * 3 { growIndex() }
        // An eighth more at a time (an append into a full array would double it): at most 1/8
        // of the array unused, for about nine copies of each entry over its growth.
        if dense.count == dense.capacity { dense.reserveCapacity(dense.count + dense.count / 8 + 4) }
        let h = hash(word)
        var i = bucket(h)
        while index[i] != 0 { i = (i + 1) & mask }
        index[i] = UInt64(h) << 32 | UInt64(dense.count + 1)
        dense.append(Entry(word: word, value: value))
        return dense.count - 1
    }

    /// Doubles the index, placing each slot by its stored hash (the entries are not read).
    private mutating func growIndex() {
        bits = Swift.max(3, bits + 1)
        let old = index
        index = Array(repeating: 0, count: 1 << bits)
        for s in old where s != 0 {
            var i = bucket(UInt32(truncatingIfNeeded: s >> 32))
            while index[i] != 0 { i = (i + 1) & mask }
            index[i] = s
        }
    }

    /// Removes the entry at `slot`: its index slot goes (later slots of its probe run move
    /// back, so lookups need no tombstones) and the last entry moves into its place.
    mutating func remove(at slot: Slot) {
        precondition(slot >= 0 && slot < dense.count, "no entry at this slot")
        var hole = indexSlot(of: slot)
        index[hole] = 0
        var j = hole
        while true {
            j = (j + 1) & mask
            let s = index[j]
            if s == 0 { break }
            let home = bucket(UInt32(truncatingIfNeeded: s >> 32))
            // The slot may move into the hole unless its home lies cyclically in (hole, j].
            let staysPut = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j)
            if staysPut { continue }
            index[hole] = s
            index[j] = 0
            hole = j
        }
        let last = dense.count - 1
        if slot != last {
            let moved = indexSlot(of: last)
            index[moved] = index[moved] & ~0xFFFF_FFFF | UInt64(slot + 1)
            dense.swapAt(slot, last)
        }
        dense.removeLast()
    }

    @discardableResult
    mutating func removeValue(forKey key: Subnet) -> Value? {
        guard let i = index(forKey: key) else { return nil }
        var value = Value.vacant
        swap(&value, &dense[i].value)
        remove(at: i)
        return value
    }

    /// Changes every value in place; drops the entries for which `body` returns false.
    mutating func updateAll(_ body: (Subnet, inout Value) -> Bool) {
        var i = 0
        while i < dense.count {
            // A removal moves the last (not yet visited) entry to `i`: visit `i` again.
            if body(dense[i].key, &dense[i].value) { i += 1 } else { remove(at: i) }
        }
    }

    // MARK: views

    /// Calls `body` with every key and its slot, in position order: one sequential pass, where
    /// a lookup per key is a cache miss each on a table bigger than the cache.
    func forEachSlot(_ body: (Subnet, Slot) -> Void) {
        for i in dense.indices { body(dense[i].key, i) }
    }

    /// The keys, in no particular order.
    var keys: [Subnet] { dense.map(\.key) }
}

extension SubnetTable: Sequence {
    /// Entries in position order (no particular order).
    func makeIterator() -> some IteratorProtocol<(key: Subnet, value: Value)> {
        dense.lazy.map { (key: $0.key, value: $0.value) }.makeIterator()
    }

    var underestimatedCount: Int { count }
}

extension SubnetTable: Sendable where Value: Sendable {}

/// A value with an empty form (no storage of its own): what `removeValue` leaves behind while it
/// takes the value out, and callers' default for `[key, default:]`.
protocol SubnetTableValue {
    static var vacant: Self { get }
}
extension SubnetTable.Entry: Sendable where Value: Sendable {}
