import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct LRUCacheTests {
    @Test("evicts the least recently used; get and set refresh recency; peek does not")
    func recency() {
        var cache = LRUCache<Int, String>(capacity: 3)
        #expect(cache.set(1, "a") == nil && cache.set(2, "b") == nil && cache.set(3, "c") == nil)
        #expect(cache.keysByRecency == [3, 2, 1])
        #expect(cache.get(1) == "a")
        #expect(cache.peek(2) == "b")
        #expect(cache.keysByRecency == [1, 3, 2])
        let evicted = cache.set(4, "d")
        #expect(evicted?.key == 2 && evicted?.value == "b")
        #expect(cache.set(3, "C") == nil, "an update never evicts")
        #expect(cache.keysByRecency == [3, 4, 1] && cache.count == 3 && cache.get(3) == "C" && cache.get(2) == nil)
    }

    @Test("matches a naive model over a long random run, and never exceeds its capacity")
    func model() {
        var random = SeededRandom(seed: 7)
        var cache = LRUCache<UInt64, UInt64>(capacity: 16)
        var model: [(UInt64, UInt64)] = []  // most recent first
        for step in 0..<20_000 {
            let key = random.next() % 40
            if random.next() % 3 == 0 {
                let got = cache.get(key)
                let i = model.firstIndex { $0.0 == key }
                #expect(got == i.map { model[$0].1 }, "step \(step)")
                if let i { model.insert(model.remove(at: i), at: 0) }
            } else {
                let evicted = cache.set(key, UInt64(step))
                if let i = model.firstIndex(where: { $0.0 == key }) {
                    model.remove(at: i)
                    #expect(evicted == nil)
                } else if model.count == 16 {
                    #expect(evicted?.key == model.removeLast().0)
                }
                model.insert((key, UInt64(step)), at: 0)
            }
            #expect(cache.count == model.count && cache.count <= 16)
        }
        #expect(cache.keysByRecency == model.map(\.0))
    }
}
