import MyceliumCore
import MyceliumTesting
import Testing

private func base(_ a: [UInt8]) -> UnsafeRawPointer? { a.withUnsafeBytes { $0.baseAddress } }

/// The packet pool: buffers come back and are reused; it stays within its limit; giving back
/// a shared array never changes what the other holder sees.
@Suite struct PacketPoolTests {
    @Test("a buffer given back is the next one taken (no allocation); larger requests allocate")
    func reuse() {
        let pool = PacketPool(limit: 4)
        var a = pool.take(capacity: 1432)
        #expect(a.isEmpty && a.capacity >= PacketPool.bufferCapacity)
        #expect(pool.allocations == 1)
        a.append(contentsOf: [1, 2, 3])
        let buffer = base(a)
        pool.recycle(consume a)
        #expect(pool.count == 1)
        let b = pool.take(capacity: 100)
        #expect(b.isEmpty && base(b) == buffer, "the same buffer, emptied")
        #expect(pool.allocations == 1)
        let big = pool.take(capacity: 9000)
        #expect(big.capacity >= 9000 && pool.allocations == 2)
        pool.recycle(big)
        #expect(pool.count == 0, "a 9000-byte buffer is not kept")
    }

    @Test("at most `limit` buffers wait; small foreign arrays are not kept")
    func bounded() {
        let pool = PacketPool(limit: 3)
        let taken = (0..<5).map { _ in pool.take(capacity: 64) }
        for buffer in taken { pool.recycle(buffer) }
        #expect(pool.count == 3)
        pool.recycle([1, 2, 3])
        #expect(pool.count == 3)
        let other = PacketPool(limit: 3)
        other.recycle([1, 2, 3])
        #expect(other.count == 0, "capacity below a pool buffer's: not kept")
    }

    @Test("giving back an array someone else still holds leaves their copy intact")
    func sharedIsSafe() {
        let pool = PacketPool()
        var a = pool.take(capacity: 10)
        a.append(contentsOf: [9, 8, 7])
        let kept = a
        pool.recycle(a)
        var reused = pool.take(capacity: 10)
        reused.append(contentsOf: [1, 1, 1, 1])
        #expect(kept == [9, 8, 7])
        #expect(reused == [1, 1, 1, 1])
    }

    @Test("copy: the bytes, with the room asked for")
    func copy() {
        let pool = PacketPool()
        let bytes: [UInt8] = (0..<200).map { UInt8($0) }
        let out = bytes.withUnsafeBytes { pool.copy($0, room: EncryptedPayload.sealRoom) }
        #expect(out == bytes && out.capacity >= bytes.count + EncryptedPayload.sealRoom)
        let sealable = bytes.withUnsafeBytes { EncryptedPayload.sealable($0, pool: pool) }
        #expect(sealable == bytes && sealable.capacity >= bytes.count + EncryptedPayload.sealRoom)
    }

    @Test("frames decoded with a pool equal those decoded without; payloads land in pool buffers")
    func decoderWithPool() throws {
        var gen = RandomPackets(seed: 7)
        var stream: [UInt8] = []
        for i in 0..<60 {
            stream += (i % 3 == 0 ? Packet.control(gen.tlv()) : Packet.data(gen.dataPacket(maxPayload: 1400))).encode()
        }
        let pool = PacketPool()
        var plain = FrameDecoder(), pooled = FrameDecoder()
        plain.append(stream)
        pooled.append(stream)
        var count = 0
        while let a = try plain.next() {
            let b = try pooled.next(pool: pool)
            #expect(a == b)
            if case let .packet(.data(d))? = b { #expect(d.payload.capacity >= PacketPool.bufferCapacity) }
            count += 1
        }
        #expect(count == 60)
        #expect(try pooled.next(pool: pool) == nil)
    }

    @Test("a queued packet is copied out of its pooled array, so the queue's byte limits hold")
    func queueCompacts() throws {
        let pool = PacketPool()
        var packet = pool.take(capacity: 60)
        packet.append(contentsOf: [UInt8](repeating: 7, count: 60))
        let subnet = Subnet.slash64(of: try #require(IPv6Address("400::1")))
        var queue = PacketQueue<[UInt8]>(limits: PacketQueueLimits(perSubnetPackets: 10, totalPackets: 10,
                                                                    perSubnetBytes: 1000, totalBytes: 1000))
        #expect(queue.enqueue(packet, for: subnet) == .queued)
        #expect(queue.bytes == 60)
        let out = queue.take(subnet)
        #expect(out == [packet])
        #expect(out[0].capacity < PacketPool.bufferCapacity, "a tight copy, not the 2 KiB pooled array")
        var data = DataPacket(hopLimit: 9, source: try #require(IPv6Address("400::1")), destination: try #require(IPv6Address("400::2")),
                              payload: packet)
        data = data.compacted()
        #expect(data.payload == packet && data.payload.capacity < PacketPool.bufferCapacity)
    }
}
