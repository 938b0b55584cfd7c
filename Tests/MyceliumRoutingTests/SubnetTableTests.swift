@testable import MyceliumRouting
import MyceliumCore
import MyceliumTesting
import Testing

/// The router's flat subnet table against a `Dictionary` doing the same operations: inserts,
/// changes in place (by slot and through `default:`), removals by key and by slot (whose
/// backward shift must keep every other key findable), bulk updates, and iteration.
@Suite struct SubnetTableTests {
    /// A value with an array inside, so copies and in-place changes are both exercised.
    struct Box: SubnetTableValue, Equatable {
        var items: [Int]
        static var vacant: Box { Box(items: []) }
    }

    static func subnet(_ i: Int) -> Subnet {
        // /64s in 400::/7, plus a few other lengths and an IPv4 subnet (never stored: lookups
        // find nothing).
        switch i % 10 {
        case 9: return Subnet(address: .v4(IPv4Address(UInt32(i))), prefixLength: 32)!
        case 8: return Subnet(IPv6Address(high: 0x0400_0000_0000_0000 | UInt64(i) << 20, low: 0), prefixLength: 48)!
        default: return Subnet(IPv6Address(high: 0x0400_0000_0000_0000 | UInt64(i) &* 0x9E37_79B9, low: 0), prefixLength: 64)!
        }
    }

    func check(_ table: SubnetTable<Box>, against model: [Subnet: Box]) {
        #expect(table.count == model.count)
        #expect(Set(table.keys) == Set(model.keys))
        var seen: [Subnet: Box] = [:]
        for (key, value) in table { seen[key] = value }
        #expect(seen == model)
        for (key, value) in model {
            #expect(table[key] == value)
            let slot = table.index(forKey: key)
            #expect(slot.map { table.key(at: $0) } == key)
            #expect(slot.map { table[at: $0] } == value)
        }
    }

    @Test("random operations agree with a Dictionary", arguments: [1, 2, 3, 4] as [UInt64])
    func model(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var table = SubnetTable<Box>()
        var model: [Subnet: Box] = [:]
        // A small key space for seeds 1–2 (dense probing, many removals of present keys),
        // a large one for 3–4 (growth through several sizes).
        let keySpace = seed <= 2 ? 24 : 2_000
        for step in 0..<6_000 {
            let key = Self.subnet(Int.random(in: 0..<keySpace, using: &rng))
            guard key.prefixLength == 64, key.ipv6 != nil else {
                // Only IPv6 /64s are stored.
                #expect(table.index(forKey: key) == nil)
                #expect(table[key] == nil)
                #expect(table.removeValue(forKey: key) == nil)
                continue
            }
            switch Int.random(in: 0..<6, using: &rng) {
            case 0, 1:
                let value = Box(items: [step])
                table[key] = value
                model[key] = value
            case 2:
                table[key, default: .vacant].items.append(step)
                model[key, default: .vacant].items.append(step)
            case 3:
                if let slot = table.index(forKey: key) {
                    table[at: slot].items.append(-step)
                    model[key]!.items.append(-step)
                } else {
                    #expect(model[key] == nil)
                }
            case 4:
                let removed = table.removeValue(forKey: key)
                #expect(removed == model.removeValue(forKey: key))
            default:
                if let slot = table.index(forKey: key) {
                    table.remove(at: slot)
                    model[key] = nil
                }
            }
            if step % 500 == 0 { check(table, against: model) }
        }
        check(table, against: model)
        table.updateAll { _, box in
            box.items.append(0)
            return box.items.count % 2 == 0
        }
        model = model.compactMapValues { box in
            var box = box
            box.items.append(0)
            return box.items.count % 2 == 0 ? box : nil
        }
        check(table, against: model)
        for key in Array(model.keys) {
            table[key] = nil
            model[key] = nil
        }
        check(table, against: model)
        #expect(table.isEmpty)
    }

    @Test("keys are stored as /64 network words: another prefix length on the same word finds nothing")
    func onlySlash64() {
        var table = SubnetTable<Box>()
        let address = IPv6Address(high: 0x0400_1234_5678_9ABC, low: 0)
        let slash64 = Subnet(address, prefixLength: 64)!
        table[slash64] = Box(items: [1])
        #expect(table[slash64] == Box(items: [1]))
        #expect(table.key(at: table.index(forKey: slash64)!) == slash64)
        for other in [Subnet(address, prefixLength: 48)!, Subnet(address, prefixLength: 128)!,
                      Subnet(address: .v4(IPv4Address(0x0400_1234)), prefixLength: 32)!] {
            #expect(table.index(forKey: other) == nil)
            #expect(table[other] == nil)
        }
        #expect(Array(table.keys) == [slash64])
    }

    /// With the multiplier fixed at 1 a key's home is its top bits: keys sharing them form one
    /// cluster, and a cluster whose home is the last slot wraps around to the first. Removals
    /// inside such clusters exercise both branches of the backward shift on every run.
    @Test("clustered and wrapping probe runs agree with a Dictionary", arguments: [5, 6] as [UInt64])
    func clusters(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var table = SubnetTable<Box>(multiplier: 1)
        var model: [Subnet: Box] = [:]
        func key(_ i: Int) -> Subnet {
            // Home 0 (top bits 0x04…) or the last slot (0xFF…), whatever the table's size.
            let top: UInt64 = i % 2 == 0 ? 0x0400_0000_0000_0000 : 0xFFFF_FFFF_0000_0000
            return Subnet(IPv6Address(high: top | UInt64(i) << 16, low: 0), prefixLength: 64)!
        }
        for step in 0..<4_000 {
            let k = key(Int.random(in: 0..<40, using: &rng))
            if Int.random(in: 0..<3, using: &rng) == 0 {
                let removed = table.removeValue(forKey: k)
                #expect(removed == model.removeValue(forKey: k))
            } else {
                table[k, default: .vacant].items.append(step)
                model[k, default: .vacant].items.append(step)
            }
            if step % 100 == 0 { check(table, against: model) }
        }
        check(table, against: model)
    }

    @Test("sources: each router id once, the first in the slot and the others beside it, expired ones dropped in order")
    func sources() {
        let ourKey = PublicKey(bytes: [UInt8](repeating: 2, count: 32))!
        let owner = PublicKey(bytes: [UInt8](repeating: 7, count: 32))!
        let subnet = Subnet("400:1:2:3::/64")!
        let other = Subnet("400:1:2:4::/64")!
        let ids = (1...3).map { RouterId(publicKey: owner, random: UInt64($0)) }
        let ours = RouterId(publicKey: ourKey, random: 1)  // same word as ids[0], our key
        var table = SourceTable(ourKey: ourKey)
        #expect(MemoryLayout<SourceList>.stride == 24)
        func at(_ ms: Int64) -> Instant { Instant(milliseconds: ms) }
        let hold = ProtocolConstants.sourceHoldMs
        table.recordSent(subnet: subnet, routerId: ids[0], seqno: SeqNo(5), metric: Metric(100), now: at(10))
        table.recordSent(subnet: subnet, routerId: ids[1], seqno: SeqNo(1), metric: Metric(50), now: at(30))
        table.recordSent(subnet: subnet, routerId: ids[2], seqno: SeqNo(1), metric: Metric(50), now: at(5))
        table.recordSent(subnet: other, routerId: ids[0], seqno: SeqNo(9), metric: Metric(1), now: at(5))
        #expect(table.count == 4)
        #expect(table.routerIdCount(subnet: subnet) == 3)
        #expect(table.routerIdCount(subnet: other) == 1)
        // Our key with the same word is another router id.
        #expect(table.distance(subnet: subnet, routerId: ours) == nil)
        table.recordSent(subnet: subnet, routerId: ours, seqno: SeqNo(9), metric: .infinite, now: at(40))
        #expect(table.distance(subnet: subnet, routerId: ours)?.seqno == SeqNo(9))
        #expect(table.distance(subnet: subnet, routerId: ids[0])?.seqno == SeqNo(5))
        // Same id: a worse metric keeps the distance, the expiry is refreshed.
        table.recordSent(subnet: subnet, routerId: ids[0], seqno: SeqNo(5), metric: Metric(200), now: at(20))
        #expect(table.distance(subnet: subnet, routerId: ids[0])?.metric == Metric(100))
        #expect(table.distance(subnet: subnet, routerId: ids[0])?.expires == at(20 + hold))
        // A newer seqno replaces it, also beside the slot.
        table.recordSent(subnet: subnet, routerId: ids[1], seqno: SeqNo(2), metric: Metric(300), now: at(30))
        #expect(table.distance(subnet: subnet, routerId: ids[1])?.metric == Metric(300))
        #expect(table.count == 5)
        #expect(table.collectGarbage(now: at(20 + hold)) == 3)  // ids[0] and ids[2] here, ids[0] in `other`
        #expect(table.count == 2)
        #expect(table.routerIdCount(subnet: subnet) == 2)
        #expect(table.routerIdCount(subnet: other) == 0)
        #expect(table.distance(subnet: subnet, routerId: ids[0]) == nil)
        #expect(table.distance(subnet: subnet, routerId: ids[1])?.seqno == SeqNo(2))
        #expect(table.distance(subnet: subnet, routerId: ids[2]) == nil)
        #expect(table.distance(subnet: subnet, routerId: ours)?.seqno == SeqNo(9))
        #expect(table.collectGarbage(now: at(30 + hold)) == 1)
        #expect(table.routerIdCount(subnet: subnet) == 1)
        #expect(table.distance(subnet: subnet, routerId: ours)?.seqno == SeqNo(9))
        // A new id after the slot's survivor moved up goes beside it again.
        table.recordSent(subnet: subnet, routerId: ids[2], seqno: SeqNo(3), metric: Metric(3), now: at(30 + hold))
        #expect(table.routerIdCount(subnet: subnet) == 2)
        #expect(table.distance(subnet: subnet, routerId: ids[2])?.seqno == SeqNo(3))
        #expect(table.collectGarbage(now: at(40 + hold)) == 1)
        #expect(table.distance(subnet: subnet, routerId: ours) == nil)
        #expect(table.distance(subnet: subnet, routerId: ids[2])?.seqno == SeqNo(3))
        #expect(table.collectGarbage(now: at(30 + 2 * hold)) == 1)
        #expect(table.count == 0)
        #expect(table.routerIdCount(subnet: subnet) == 0)
    }
}
