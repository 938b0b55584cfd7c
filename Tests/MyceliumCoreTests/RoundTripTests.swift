import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct RoundTripTests {
    @Test("random valid packets encode → decode to themselves")
    func packets() throws {
        var gen = RandomPackets(seed: 0x5EED)
        for _ in 0..<3000 {
            let packet = gen.packet()
            #expect(try FrameDecoder.decodeSingle(packet.encode()) == packet)
        }
    }

    @Test("random message packets, beacons, addresses and router ids round-trip")
    func others() throws {
        var gen = RandomPackets(seed: 42)
        for _ in 0..<2000 {
            let m = gen.message()
            #expect(try MessagePacket(decoding: m.encode()) == m)
            let beacon = DiscoveryBeacon(tcpPort: gen.u16(), routerId: gen.routerId())
            #expect(try DiscoveryBeacon(decoding: beacon.encode()) == beacon)
            let a = gen.ipv6()
            #expect(IPv6Address(a.description) == a)
            let s = gen.subnet()
            #expect(Subnet(s.description) == s)
            let id = gen.routerId()
            #expect(RouterId(id.description) == id)
        }
    }
}
