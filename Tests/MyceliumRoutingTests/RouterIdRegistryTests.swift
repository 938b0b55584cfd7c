import MyceliumCore
@testable import MyceliumTesting
import Testing

@Suite struct RouterIdRegistryTests {
    @Test("ids get indices in order of first use, the same id always the same index, through growth and colliding random parts")
    func indices() {
        var registry = RouterIdRegistry()
        var rng = SeededRandom(seed: 3)
        var made: [RouterId] = []
        for i in 0..<3000 {
            let key = PublicKey(bytes: rng.bytes(32))!
            // Every third id shares its zone and random part with the one before: only the key differs.
            made.append(i % 3 == 2 ? RouterId(publicKey: key, zone: made[i - 1].zone, random: made[i - 1].random)
                                   : RouterId(publicKey: key, zone: UInt16(i % 5), random: rng.next()))
        }
        for (i, id) in made.enumerated() { #expect(registry.index(of: id) == Int32(i)) }
        for (i, id) in made.enumerated().reversed() {
            #expect(registry.index(of: id) == Int32(i))
            #expect(registry[Int32(i)] == id)
        }
        #expect(registry.ids.count == made.count)
    }
}
