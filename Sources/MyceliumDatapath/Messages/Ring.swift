/// A first-in first-out list with O(1) append and removal at the front (removal in the middle
/// is O(n), for the inbox's topic filter). Storage is compacted once half of it is dead.
struct Ring<Element> {
    private var storage: [Element?] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { count == 0 }
    var first: Element? { isEmpty ? nil : storage[head] }

    mutating func append(_ element: Element) { storage.append(element) }

    mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        let element = storage[head].take()
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 64, head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return element
    }

    /// Position counted from the front (0 = first).
    func firstIndex(where predicate: (Element) -> Bool) -> Int? {
        for i in head..<storage.count where predicate(storage[i]!) { return i - head }
        return nil
    }

    subscript(position: Int) -> Element { storage[head + position]! }

    mutating func remove(at position: Int) -> Element {
        if position == 0 { return popFirst()! }
        return storage.remove(at: head + position)!
    }
}
