import MyceliumCore
@testable import MyceliumNode
import MyceliumTesting
import NIOCore
import NIOEmbedded
import Testing

@Suite struct PacketFramingHandlerTests {
    static func channel() throws -> (EmbeddedChannel, PacketFramingHandler) {
        let handler = PacketFramingHandler()
        let channel = EmbeddedChannel(handler: handler)
        try channel.connect(to: SocketAddress(ipAddress: "::1", port: 9651)).wait()  // active, like a peer
        return (channel, handler)
    }

    static func feed(_ channel: EmbeddedChannel, _ bytes: [UInt8]) throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try channel.writeInbound(buffer)
    }

    @Test("a byte stream in random pieces comes out as the packets that went in")
    func inbound() throws {
        let (channel, handler) = try Self.channel()
        var gen = SeededRandom(seed: 4)
        let hello = Packet.control(.hello(Hello(seqno: SeqNo(1), interval: 2000)))
        let data = Packet.data(DataPacket(hopLimit: 63, source: .zero, destination: .zero, payload: gen.bytes(100)))
        let stream = (0..<20).flatMap { i in (i % 3 == 0 ? data : hello).encode() }
        var offset = 0
        while offset < stream.count {
            let n = min(Int.random(in: 1...50, using: &gen), stream.count - offset)
            try Self.feed(channel, Array(stream[offset..<(offset + n)]))
            offset += n
        }
        var received: [Packet] = []
        while let p = try channel.readInbound(as: Packet.self) { received.append(p) }
        #expect(received == (0..<20).map { $0 % 3 == 0 ? data : hello })
        #expect(handler.counters.packetsIn == 20 && handler.counters.bytesIn == UInt64(stream.count))
        #expect(channel.isActive)
    }

    @Test("outbound packets are written as their frames")
    func outbound() throws {
        let (channel, handler) = try Self.channel()
        let frame = Vectors.vector("frame.control.hello")["frame_hex"].hexBytes!
        let packet = try FrameDecoder.decodeSingle(frame)
        try channel.writeOutbound(packet)
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(written.readableBytesView) == frame)
        #expect(handler.counters.packetsOut == 1)
    }

    @Test("a data packet's frame is the codec's, and batches reuse their buffer only once the channel let go of it")
    func batchBufferReuse() throws {
        let (channel, _) = try Self.channel()
        var gen = SeededRandom(seed: 8)
        func packet() -> Packet {
            .data(DataPacket(hopLimit: 64, source: IPv6Address(bytes: gen.bytes(16)), destination: IPv6Address(bytes: gen.bytes(16)),
                             payload: gen.bytes(Int.random(in: 0...1500, using: &gen))))
        }
        func base(_ b: ByteBuffer) -> UnsafeRawPointer? { b.withUnsafeReadableBytes { $0.baseAddress } }

        // Held by someone (as NIO holds a batch it has not sent yet): the next batch must not
        // write into it, and its bytes stay what was written.
        let first = [packet(), packet()]
        for p in first { try channel.writeOutbound(p) }  // a write and flush each: two batches
        let held = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(held.readableBytesView) == first[0].encode())
        let second = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(second.readableBytesView) == first[1].encode())
        #expect(base(held) != base(second))
        let third = packet()
        try channel.writeOutbound(third)
        #expect(Array(held.readableBytesView) == first[0].encode())
        #expect(Array(second.readableBytesView) == first[1].encode())

        // Let go of: the next batch is written into the same storage.
        var released = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(released.readableBytesView) == third.encode())
        let address = base(released)
        let capacity = released.capacity
        released = ByteBuffer()
        // Were the storage freed, this would likely get it from malloc, and the batch could not.
        var decoy = channel.allocator.buffer(capacity: capacity)
        decoy.writeInteger(UInt8(1))
        let fourth = [packet(), packet(), packet()]
        for p in fourth { channel.write(p, promise: nil) }
        channel.flush()
        let reused = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(Array(reused.readableBytesView) == fourth.flatMap { $0.encode() })
        #expect(base(reused) == address)
        #expect(base(decoy) != address)
        _ = released
    }

    @Test("rejected TLVs are counted and skipped; the connection stays up and in sync")
    func droppedFrames() throws {
        let (channel, handler) = try Self.channel()
        let unknown: [UInt8] = [1, 1, 0, 0, 42, 3, 0, 5, 99, 3, 1, 2, 3]
        let hello = Packet.control(.hello(Hello(seqno: SeqNo(9), interval: 2000)))
        try Self.feed(channel, unknown + unknown + hello.encode())
        #expect(try channel.readInbound(as: Packet.self) == hello)
        #expect(handler.counters.framesDropped == 2)
        #expect(channel.isActive)
    }

    @Test("garbage (lost framing) closes the connection")
    func garbage() throws {
        let (channel, handler) = try Self.channel()
        try Self.feed(channel, [0x47, 0x45, 0x54, 0x20, 0x2F, 0x20, 0x48])  // "GET / H"
        #expect(!channel.isActive)
        #expect(handler.counters.framingErrors == 1 && handler.counters.closedForMisbehaviour)
    }

    @Test("a flood of rejected frames closes the connection")
    func flood() throws {
        let (channel, handler) = try Self.channel()
        let unknown: [UInt8] = [1, 1, 0, 0, 42, 3, 0, 2, 99, 0]
        try Self.feed(channel, Array((0..<(PeerTuning.maxConsecutiveDropped + 1)).map { _ in unknown }.joined()))
        #expect(!channel.isActive)
        #expect(handler.counters.closedForMisbehaviour)
    }

    @Test("above the high-water mark: what is still written may exceed it by the overflow limit, then the peer is closed")
    func outboxOverflow() throws {
        let (channel, handler) = try Self.channel()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        let update = Packet.control(.hello(Hello(seqno: SeqNo(1), interval: 2000)))
        let frame = update.encode().count
        for _ in 0..<(PeerTuning.outboxOverflowBytes / frame) { channel.write(update, promise: nil) }
        #expect(channel.isActive && !handler.counters.closedForOutbox)
        for _ in 0..<2 { channel.write(update, promise: nil) }
        #expect(handler.counters.closedForOutbox)
        #expect(!channel.isActive)
    }

    @Test("a peer unwritable for the stall timeout is closed; one that becomes writable again is kept")
    func stalledPeer() throws {
        let (channel, handler) = try Self.channel()
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(PeerTuning.stalledPeerTimeoutMs - 1))
        channel.isWritable = true
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(channel.isActive && !handler.counters.closedForOutbox)
        channel.isWritable = false
        channel.pipeline.fireChannelWritabilityChanged()
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(PeerTuning.stalledPeerTimeoutMs))
        #expect(handler.counters.closedForOutbox)
        #expect(!channel.isActive)
    }

    @Test("QUIC datagrams: exactly one whole frame each is passed on; garbage, two frames or part of one are counted and dropped, and the next datagram decodes again")
    func datagrams() throws {
        let (channel, handler) = try Self.channel()
        let context = try channel.pipeline.syncOperations.context(handlerType: PacketFramingHandler.self)
        let hello = Packet.control(.hello(Hello(seqno: SeqNo(5), interval: 400))).encode()
        let data = Packet.data(DataPacket(hopLimit: 60, source: .zero, destination: .zero, payload: [UInt8](repeating: 7, count: 1432))).encode()
        let cases: [([UInt8], Bool)] = [
            (hello, true), ([1, 9, 0, 0, 0, 0], false), (hello, true), (hello + hello, false), (Array(data.prefix(100)), false),
            (data, true), (hello + [0], false), ([], false), (hello, true),
        ]
        for (bytes, accepted) in cases {
            let ok = bytes.withUnsafeBytes { handler.receiveDatagram($0, context: context) }
            #expect(ok == accepted, "\(bytes.prefix(8))… (\(bytes.count) bytes)")
        }
        var received: [Packet] = []
        while let p = try channel.readInbound(as: Packet.self) { received.append(p) }
        #expect(received.map { $0.encode() } == [hello, hello, data, hello])
        #expect(handler.counters.framesDropped == 5 && handler.counters.packetsIn == 4)
        #expect(channel.isActive, "a bad datagram never closes the connection")
    }
}
