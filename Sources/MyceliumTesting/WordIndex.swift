import MyceliumCore

/// Keys numbered in order of first insertion, found through a 64-bit word of each: open
/// addressing on the word (a multiplication spreads it), at most half full, the whole key
/// compared on a hit. The simulator's lookup tables: queued Updates' router ids, and the nodes'
/// /64s. A `Dictionary` would run SipHash for every lookup (over 40 bytes for a router id).
struct WordIndex<Key: Equatable> {
    private(set) var keys: [Key] = []
    /// Index into `keys` + 1; 0 is empty. A power of two.
    private var slots = [Int32](repeating: 0, count: 1024)
    private let word: (Key) -> UInt64

    init(word: @escaping (Key) -> UInt64) {
        self.word = word
    }

    subscript(index: Int32) -> Key { keys[Int(index)] }

    private func home(_ key: Key) -> Int {
        Int(truncatingIfNeeded: (word(key) &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - slots.count.trailingZeroBitCount))
    }

    /// The index of `key`, nil if it was never added.
    func find(_ key: Key) -> Int32? {
        let mask = slots.count - 1
        var i = home(key)
        while slots[i] != 0 {
            if keys[Int(slots[i] - 1)] == key { return slots[i] - 1 }
            i = (i + 1) & mask
        }
        return nil
    }

    /// The index of `key`, added if new.
    mutating func index(of key: Key) -> Int32 {
        let mask = slots.count - 1
        var i = home(key)
        while slots[i] != 0 {
            if keys[Int(slots[i] - 1)] == key { return slots[i] - 1 }
            i = (i + 1) & mask
        }
        keys.append(key)
        slots[i] = Int32(keys.count)
        if keys.count * 2 > slots.count { grow() }
        return Int32(keys.count - 1)
    }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (n, key) in keys.enumerated() {
            var i = home(key)
            while slots[i] != 0 { i = (i + 1) & mask }
            slots[i] = Int32(n + 1)
        }
    }
}

/// Router ids of queued Updates, keyed by their zone and random part (48 random bits).
typealias RouterIdRegistry = WordIndex<RouterId>

extension WordIndex where Key == RouterId {
    init() { self.init { UInt64($0.zone) << 48 | $0.random } }

    var ids: [RouterId] { keys }
}

extension Subnet {
    /// The network word of an IPv6 subnet (its high 64 bits); 0 for IPv4. The simulator keys
    /// nodes' /64s by it.
    var network: UInt64 {
        if case let .v6(a) = address { a.high } else { 0 }
    }
}
