import MyceliumNode
import NIOCore
import Testing

@Suite struct BatchBufferPoolTests {
    let allocator = ByteBufferAllocator()

    func base(_ b: ByteBuffer) -> UnsafeRawPointer? { b.withVeryUnsafeBytes { $0.baseAddress.map(UnsafeRawPointer.init) } }

    @Test("a kept buffer comes back empty only once nobody else holds it; held ones are skipped, never written into")
    func reuseOnlyWhenFree() {
        let pool = BatchBufferPool(limit: 4)
        var a = pool.take(minimumCapacity: 10, newCapacity: 1000, allocator: allocator)
        a.writeString("first")
        pool.keep(a)  // `a` plays the channel still holding its batch
        var b = pool.take(minimumCapacity: 10, newCapacity: 1000, allocator: allocator)
        #expect(base(b) != base(a) && pool.allocations == 2)
        #expect(a.getString(at: 0, length: 5) == "first")
        b.writeString("second")
        pool.keep(b)
        let bAddress = base(b)
        b = ByteBuffer()  // the channel is done with `b`
        let c = pool.take(minimumCapacity: 10, newCapacity: 1000, allocator: allocator)
        #expect(base(c) == bAddress && c.readableBytes == 0 && pool.allocations == 2)
        #expect(a.getString(at: 0, length: 5) == "first")
        _ = b
    }

    @Test("bounded: at most `limit` kept, none above `maxCapacity`, and a free one too small is not used")
    func bounds() {
        let pool = BatchBufferPool(limit: 3, maxCapacity: 4096)
        for _ in 0..<10 { pool.keep(allocator.buffer(capacity: 100)) }
        #expect(pool.count == 3)
        let big = pool.take(minimumCapacity: 200, newCapacity: 8192, allocator: allocator)
        #expect(big.capacity >= 8192 && pool.allocations == 1)
        pool.keep(big)
        #expect(pool.count == 3)  // too large to keep
        let small = pool.take(minimumCapacity: 50, newCapacity: 100, allocator: allocator)
        #expect(pool.allocations == 1 && small.capacity >= 50)
    }
}
