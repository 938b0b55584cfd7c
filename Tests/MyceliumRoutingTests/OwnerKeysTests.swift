@testable import MyceliumRouting
import MyceliumCore
import MyceliumTesting
import Testing

/// The route table names each subnet's owner key by a reference into `OwnerKeys`: a key is
/// stored once, a reference never changes meaning, and a router's own pool is replaced by a
/// compacted one when dead keys outnumber its subnets.
@Suite struct OwnerKeysTests {
    @Test("a key is stored once; references read back their keys")
    func pool() {
        let pool = OwnerKeys()
        var rng = SeededRandom(seed: 3)
        let keys = (0..<2_500).map { _ in PublicKey(bytes: rng.bytes(32))! }  // more than one chunk
        let refs = keys.map { pool.ref(for: $0) }
        #expect(pool.count == keys.count)
        #expect(zip(refs, keys).allSatisfy { pool[$0] == $1 })
        #expect(keys.map { pool.ref(for: $0) } == refs)
        #expect(pool.count == keys.count)
        #expect(pool.compactable)
        #expect(!OwnerKeys(shared: true).compactable)
        #expect(MemoryLayout<SubnetRoutes>.stride == 96)
    }

    @Test("owners that left are dropped from the router's pool; the others keep their keys")
    func compaction() {
        var h = Harness()
        h.add(1); h.add(2); h.add(3)
        let stable = (0..<300).map { _ in h.makeNode() }
        let leaving = (0..<1_500).map { _ in h.makeNode() }
        let arriving = (0..<1_500).map { _ in h.makeNode() }
        for n in stable { h.receive(Harness.update(n, metric: 0), from: 3) }
        for n in leaving { h.receive(Harness.update(n, metric: 0), from: 1) }
        #expect(h.router.owners.count == 1_800)
        // Neighbour 1 goes: its routes are held 6 s as retractions, then removed.
        h.handle(.neighbourRemoved(NeighbourId(1)))
        h.advance(to: 7_000)
        #expect(h.router.routes.count == 300)
        #expect(h.router.stats.ownerPoolCompactions == 0)
        // The first new subnet finds 1800 keys for 300 subnets: the pool is compacted first.
        for n in arriving { h.receive(Harness.update(n, metric: 0), from: 2) }
        #expect(h.router.stats.ownerPoolCompactions == 1)
        #expect(h.router.owners.count == 1_800)
        for n in stable + arriving {
            #expect(h.router.owner(of: n.publicKey.overlayAddress) == n.publicKey)
        }
        for n in leaving { #expect(h.router.owner(of: n.publicKey.overlayAddress) == nil) }
        let selected = h.router.selectedRoutes()
        #expect(selected.count == 1_800)
        #expect(Set(selected.map(\.routerId)) == Set(stable + arriving))
        #expect(h.router.forwardingTable().entries.allSatisfy { $0.subnet.contains(.v6($0.owner.overlayAddress)) })
    }
}
