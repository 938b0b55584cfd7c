import MyceliumTesting
import Testing

/// The simulator's queue against the order it promises: by time, and by insertion among equal
/// times (the order a heap of (time, insertion number) gives), through random interleavings
/// of pushes and pops.
@Suite struct EventQueueTests {
    @Test("pops by time, then insertion order, like a sorted list of (time, insertion)", arguments: [1, 2, 3] as [UInt64])
    func model(seed: UInt64) {
        var rng = SeededRandom(seed: seed)
        var queue = EventQueue<Int>()
        var model: [(time: Int64, seq: Int)] = []
        var seq = 0
        var now: Int64 = 0
        for _ in 0..<3_000 {
            if model.isEmpty || Int.random(in: 0..<3, using: &rng) > 0 {
                // Mostly near future, often the same few times, sometimes now.
                let time = now + Int64.random(in: 0...(Bool.random(using: &rng) ? 3 : 200), using: &rng)
                queue.push(seq, at: time)
                model.append((time, seq))
                seq += 1
            } else {
                let i = model.indices.min { (model[$0].time, model[$0].seq) < (model[$1].time, model[$1].seq) }!
                let expected = model.remove(at: i)
                #expect(queue.nextTime == expected.time)
                let popped = queue.pop()
                #expect(popped?.time == expected.time && popped?.payload == expected.seq)
                now = expected.time
            }
            #expect(queue.count == model.count)
        }
        while let expected = model.indices.min(by: { (model[$0].time, model[$0].seq) < (model[$1].time, model[$1].seq) }).map({ model.remove(at: $0) }) {
            let popped = queue.pop()
            #expect(popped?.time == expected.time && popped?.payload == expected.seq)
        }
        #expect(queue.isEmpty && queue.pop() == nil)
    }
}
