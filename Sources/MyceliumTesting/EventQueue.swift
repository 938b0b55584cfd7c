/// A binary min-heap of timed events with deterministic tie-breaking: equal times pop in
/// insertion order, so a simulation replays exactly from its seed.
///
/// The heap holds only plain (time, seq, slot) triples; payloads sit in a slab and are moved,
/// never copied, which keeps a 1000-node run from spending its time copying large events.
public struct EventQueue<Payload> {
    private struct Key {
        let time: Int64
        let seq: UInt64
        let slot: Int32

        @inline(__always) static func < (a: Key, b: Key) -> Bool {
            a.time != b.time ? a.time < b.time : a.seq < b.seq
        }
    }

    private var heap: [Key] = []
    private var slab: [Payload?] = []
    private var freeSlots: [Int32] = []
    private var nextSeq: UInt64 = 0

    public init() {}

    public var isEmpty: Bool { heap.isEmpty }
    public var count: Int { heap.count }
    public var nextTime: Int64? { heap.first?.time }

    public mutating func push(_ payload: Payload, at time: Int64) {
        let slot: Int32
        if let free = freeSlots.popLast() {
            slot = free
            slab[Int(free)] = payload
        } else {
            slot = Int32(slab.count)
            slab.append(payload)
        }
        heap.append(Key(time: time, seq: nextSeq, slot: slot))
        nextSeq += 1
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard heap[i] < heap[parent] else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    public mutating func pop() -> (time: Int64, payload: Payload)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, heap[l] < heap[m] { m = l }
            if r < heap.count, heap[r] < heap[m] { m = r }
            if m == i { break }
            heap.swapAt(i, m)
            i = m
        }
        let payload = slab[Int(top.slot)].take()!
        freeSlots.append(top.slot)
        return (top.time, payload)
    }
}
