/// Timed events with deterministic tie-breaking: equal times pop in insertion order, so a
/// simulation replays exactly from its seed.
///
/// Events are kept in one FIFO bucket per distinct time, and only the distinct times sit in a
/// binary min-heap. Times are whole milliseconds and a network's events crowd onto few of
/// them, so the heap holds hundreds of entries where a heap of events would hold the
/// millions of Updates in flight while 1000 nodes converge (and pay a cache miss per level
/// for each). Within a bucket, arrival order is insertion order: exactly the (time,
/// insertion) order of a heap of events.
public struct EventQueue<Payload> {
    private struct Bucket {
        var items: [Payload] = []
        var head = 0
    }

    /// Min-heap of the times that have a bucket.
    private var times: [Int64] = []
    private var buckets: [Int64: Bucket] = [:]
    /// Drained buckets' storage, reused so steady state allocates nothing.
    private var spare: [[Payload]] = []
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }
    public var nextTime: Int64? { times.first }

    public mutating func push(_ payload: Payload, at time: Int64) {
        count += 1
        if let i = buckets.index(forKey: time) {
            buckets.values[i].items.append(payload)
            return
        }
        var items = spare.popLast() ?? []
        items.append(payload)
        buckets[time] = Bucket(items: items)
        times.append(time)
        var i = times.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard times[i] < times[parent] else { break }
            times.swapAt(i, parent)
            i = parent
        }
    }

    public mutating func pop() -> (time: Int64, payload: Payload)? {
        guard let time = times.first, let i = buckets.index(forKey: time) else { return nil }
        count -= 1
        let payload = buckets.values[i].items[buckets.values[i].head]
        buckets.values[i].head += 1
        guard buckets.values[i].head == buckets.values[i].items.count else { return (time, payload) }
        // Bucket drained: recycle its storage and drop its time from the heap.
        var items = buckets.remove(at: i).value.items
        if spare.count < 64, items.capacity <= 4096 {
            items.removeAll(keepingCapacity: true)
            spare.append(items)
        }
        times.swapAt(0, times.count - 1)
        times.removeLast()
        var j = 0
        while true {
            let l = 2 * j + 1, r = l + 1
            var m = j
            if l < times.count, times[l] < times[m] { m = l }
            if r < times.count, times[r] < times[m] { m = r }
            if m == j { break }
            times.swapAt(j, m)
            j = m
        }
        return (time, payload)
    }
}
