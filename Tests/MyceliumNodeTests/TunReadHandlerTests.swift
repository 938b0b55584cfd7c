import Logging
import MyceliumCore
@testable import MyceliumNode
import MyceliumSystem
import NIOCore
import NIOEmbedded
import Testing

/// The TUN reader alone: an embedded channel stands for the epoll wake, a script of reads for
/// the fd, and a recording sink for the datapath.
@Suite struct TunReadHandlerTests {
    final class Sink: TunReadSink {
        let packetPool = PacketPool()
        var packets: [[UInt8]] = []
        var malformed = 0
        var superPackets = 0
        /// Packets received when each flush came.
        var flushes: [Int] = []

        func fromTun(_ packet: consuming [UInt8]) { packets.append(packet) }
        func countTunRead(malformed: Bool, superPacket: Bool) {
            if malformed { self.malformed += 1 }
            if superPacket { superPackets += 1 }
        }
        func flush() { flushes.append(packets.count) }
    }

    /// What the fd gives on each direct read: bytes, EAGAIN (nil), or an error.
    final class Script {
        var reads: [Result<[UInt8]?, SystemError>] = []
        var calls = 0
        func read(_ buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int? {
            calls += 1
            guard !reads.isEmpty else { return nil }
            guard let bytes = try reads.removeFirst().get() else { return nil }
            buffer.copyBytes(from: bytes)
            return bytes.count
        }
    }

    struct Setup {
        let channel: EmbeddedChannel
        let sink = Sink()
        let script = Script()
        let closed = Counter()

        init(vnetHeader: Bool) throws {
            let (sink, script, closed) = (self.sink, self.script, self.closed)
            let handler = TunReadHandler(read: { buffer throws(SystemError) in try script.read(buffer) }, deviceName: "test0",
                                         vnetHeader: vnetHeader, sink: sink, logger: Logger(label: "test"),
                                         onClosed: { closed.value += 1 })
            channel = EmbeddedChannel(handler: handler)
        }

        /// One wake: NIO's own read of `first`, then the handler's direct reads.
        func wake(_ first: [UInt8]) throws {
            var buffer = channel.allocator.buffer(capacity: first.count)
            buffer.writeBytes(first)
            try channel.writeInbound(buffer)
        }
    }

    final class Counter { var value = 0 }

    /// An IPv6 packet of `length` bytes, its bytes numbered by `tag` so they can be told apart.
    static func packet(_ tag: UInt8, length: Int = 100) -> [UInt8] {
        var p = [UInt8](repeating: tag, count: length)
        p[0] = 0x60
        p[4] = UInt8((length - 40) >> 8)
        p[5] = UInt8(truncatingIfNeeded: length - 40)
        p[6] = 17
        return p
    }

    /// A TSO super-packet of one TCP flow (IPv6, 20-byte TCP header), `payload` bytes long.
    static func superPacket(payload: Int) -> [UInt8] {
        var p = packet(0, length: 60 + payload)
        p[6] = 6
        for i in 40..<60 { p[i] = 0 }
        p[52] = 5 << 4  // data offset: 5 words
        p[53] = 0x18  // ACK | PSH
        for i in 0..<payload { p[60 + i] = UInt8(truncatingIfNeeded: i) }
        return p
    }

    @Test("one wake reads at most 64 packets and flushes once; the rest waits for the next wake, in order")
    func batchBound() throws {
        let s = try Setup(vnetHeader: false)
        s.script.reads = (1...100).map { .success(Self.packet(UInt8($0))) }
        try s.wake(Self.packet(0))
        #expect(s.sink.packets.count == TunReading.batch)
        #expect(s.sink.flushes == [TunReading.batch])
        #expect(s.script.reads.count == 100 - (TunReading.batch - 1))
        try s.wake(Self.packet(200))
        #expect(s.sink.packets.count == 102)
        #expect(s.sink.flushes == [TunReading.batch, 102])
        let expected: [UInt8] = [0] + Array(1...63) + [200] + Array(64...100)
        let tags: [UInt8] = s.sink.packets.map { $0[8] }
        #expect(tags == expected)
        // Each packet came with room to be sealed in place, and what was read is its content.
        let roomy = s.sink.packets.allSatisfy { $0.capacity >= $0.count + EncryptedPayload.sealRoom }
        #expect(roomy)
        #expect(s.sink.packets[5] == Self.packet(5))
    }

    @Test("with offloads: a super-packet is split into its segments, a plain read passes, a short read is counted")
    func offloads() throws {
        let s = try Setup(vnetHeader: true)
        let tso = VirtioNetHeader(flags: VirtioNetHeader.Flag.needsChecksum, gsoType: VirtioNetHeader.GSO.tcpv6,
                                  headerLength: 60, gsoSize: 1000, checksumStart: 40, checksumOffset: 16)
        s.script.reads = [
            .success(tso.bytes + Self.superPacket(payload: 4500)),
            .success([1, 2, 3]),  // shorter than the header
            .success(VirtioNetHeader.none.bytes + Self.packet(9)),
        ]
        try s.wake(VirtioNetHeader.none.bytes + Self.packet(7))
        #expect(s.sink.packets.count == 1 + 5 + 1)
        #expect(s.sink.superPackets == 1 && s.sink.malformed == 1)
        #expect(s.sink.flushes == [7])
        let segments = s.sink.packets[1...5]
        let sizes: [Int] = segments.map { $0.count - 60 }
        #expect(sizes == [1000, 1000, 1000, 1000, 500])
        let payload: [UInt8] = segments.flatMap { Array($0[60...]) }
        let sent: [UInt8] = (0..<4500).map { UInt8(truncatingIfNeeded: $0) }
        #expect(payload == sent)
        #expect(s.sink.packets.first == Self.packet(7) && s.sink.packets.last == Self.packet(9))
    }

    @Test("a read error ends the wake (what was read still goes, and is flushed) and is not fatal; closing reports once")
    func readError() throws {
        let s = try Setup(vnetHeader: false)
        s.script.reads = [.success(Self.packet(1)), .failure(SystemError("read test0", errno: 5)), .success(Self.packet(2))]
        try s.wake(Self.packet(0))
        #expect(s.sink.packets.count == 2 && s.script.reads.count == 1)
        #expect(s.sink.flushes == [2])
        try s.wake(Self.packet(3))
        let tags: [UInt8] = s.sink.packets.map { $0[8] }
        #expect(tags == [0, 1, 3, 2])
        #expect(s.closed.value == 0)
        try s.channel.close().wait()
        #expect(s.closed.value == 1)
    }
}
