import MyceliumCore
import MyceliumNode
import MyceliumRouting
import MyceliumTesting
import NIOCore
import NIOEmbedded
import Testing

/// `RouterService.send` remembers the last neighbour written to (a batch's packets go to one
/// neighbour in runs): that memory must never outlive the neighbour.
@Suite struct RouterServiceSendTests {
    final class Sink: @unchecked Sendable {  // Touched only on the embedded loop's thread (the test's).
        var got: [UInt8] = []
    }

    static func packet(_ tag: UInt8) -> Packet {
        .data(DataPacket(hopLimit: 64, source: IPv6Address(high: 0x0400 << 48, low: 1),
                         destination: IPv6Address(high: 0x0400 << 48 | 1, low: 1), payload: [tag]))
    }

    @Test("sends reach the neighbour asked for through runs and alternations; a detached neighbour is gone at once, a new one reached")
    func lastNeighbourRemembered() throws {
        var rng = SeededRandom(seed: 11)
        let loop = EmbeddedEventLoop()
        let service = RouterService(routerId: RouterId(publicKey: PublicKey(bytes: rng.bytes(32))!, random: 1), loop: loop)
        let (sinkA, sinkB, sinkC) = (Sink(), Sink(), Sink())
        let a = service.attach(EmbeddedChannel(loop: loop), staticCost: LinkCost.tcpIPv6) { sinkA.got += $0.payload }
        let b = service.attach(EmbeddedChannel(loop: loop), staticCost: LinkCost.tcpIPv6) { sinkB.got += $0.payload }
        for tag: UInt8 in [1, 2, 3] { #expect(service.send(Self.packet(tag), to: a) == .queued) }
        #expect(service.send(Self.packet(4), to: b) == .queued)
        #expect(service.send(Self.packet(5), to: a) == .queued)
        #expect(sinkA.got == [1, 2, 3, 5] && sinkB.got == [4])

        service.detach(a)
        #expect(service.send(Self.packet(6), to: a) == .gone, "the remembered neighbour went")
        #expect(sinkA.got == [1, 2, 3, 5])
        service.detach(b)
        let c = service.attach(EmbeddedChannel(loop: loop), staticCost: LinkCost.tcpIPv6) { sinkC.got += $0.payload }
        #expect(c != a && c != b)
        #expect(service.send(Self.packet(7), to: b) == .gone)
        #expect(service.send(Self.packet(8), to: c) == .queued)
        #expect(sinkC.got == [8] && sinkB.got == [4])
    }
}
