import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct ICMPv6Tests {
    static let echo = Vectors.vector("data.encrypted_l3_packet")["ipv6_packet_hex"].hexBytes!

    @Test("the checksum reproduces the echo request of the data-packet vector (computed independently)")
    func checksumVector() throws {
        let header = try #require(IPv6Header(Self.echo))
        var message = Array(Self.echo[40...])
        let expected = UInt16(message[2]) << 8 | UInt16(message[3])
        message[2] = 0; message[3] = 0
        #expect(ICMPv6.checksum(source: header.source, destination: header.destination, message: message[...]) == expected)
        #expect(expected == 0x65D1)
    }

    @Test("error messages: header fields, quote cut to fit 1280 bytes, valid checksum")
    func errorLayout() throws {
        let src = IPv6Address("520:c662:fd00:9e92::1")!, dst = IPv6Address("52d:dc0:ab0c:851a::2")!
        let big = [UInt8](repeating: 0xAB, count: 1400)
        for (message, type, code) in [(ICMPv6.Message.timeExceeded, 3, 0), (.destinationUnreachable(.noRoute), 1, 0),
                                      (.destinationUnreachable(.addressUnreachable), 1, 3), (.destinationUnreachable(.sourcePolicyFailed), 1, 5)] {
            let packet = ICMPv6.error(message, source: src, destination: dst, quoting: big)
            #expect(packet.count == 1280)
            let header = try #require(IPv6Header(packet))
            #expect(header.nextHeader == 58 && header.hopLimit == 64 && header.source == src && header.destination == dst)
            #expect(Int(header.payloadLength) == packet.count - 40)
            #expect(packet[40] == UInt8(type) && packet[41] == UInt8(code))
            #expect(ICMPv6.checksum(source: src, destination: dst, message: packet[40...]) == 0, "checksum must verify")
        }
        let small = ICMPv6.error(.timeExceeded, source: src, destination: dst, quoting: Self.echo)
        #expect(small.count == 40 + 8 + Self.echo.count)
        #expect(Array(small[48...]) == Self.echo)
    }
}

@Suite struct OutboundPolicyTests {
    static let node = IPv6Address("520:c662:fd00:9e92:5d99:34ed:ab8:82ab")!
    static let policy = OutboundPolicy(nodeAddress: node)

    static func packet(src: String, dst: String, hop: UInt8 = 64, payload: Int = 8) -> [UInt8] {
        var p: [UInt8] = [0x60, 0, 0, 0, 0, UInt8(payload), 58, hop]
        p += IPv6Address(src)!.bytes + IPv6Address(dst)!.bytes
        return p + [UInt8](repeating: 1, count: payload)
    }

    static func icmp(_ verdict: OutboundPolicy.Verdict) -> (type: UInt8, code: UInt8, header: IPv6Header)? {
        guard case let .reply(p) = verdict, let h = IPv6Header(p) else { return nil }
        return (p[40], p[41], h)
    }

    @Test("not IPv6 or shorter than 40 bytes: dropped")
    func drop() {
        #expect(Self.policy.check([]) == .drop)
        #expect(Self.policy.check([UInt8](repeating: 0x45, count: 60)) == .drop)
        #expect(Self.policy.check(Array(Self.packet(src: "520:c662:fd00:9e92::1", dst: "52d::1").prefix(39))) == .drop)
    }

    @Test("a destination in our own /64: address unreachable, from our address to the sender")
    func ownSubnet() throws {
        let r = try #require(Self.icmp(Self.policy.check(Self.packet(src: "520:c662:fd00:9e92::1", dst: "520:c662:fd00:9e92::99"))))
        #expect(r.type == 1 && r.code == 3)
        #expect(r.header.source == Self.node && r.header.destination == IPv6Address("520:c662:fd00:9e92::1"))
    }

    @Test("a source outside 400::/7: source address failed policy")
    func badSource() throws {
        let r = try #require(Self.icmp(Self.policy.check(Self.packet(src: "fd77::1", dst: "52d::1"))))
        #expect(r.type == 1 && r.code == 5)
    }

    @Test("hop limit below 2: time exceeded; otherwise sent with its header")
    func hopLimit() throws {
        for hop: UInt8 in [0, 1] {
            let r = try #require(Self.icmp(Self.policy.check(Self.packet(src: "520:c662:fd00:9e92::1", dst: "52d::1", hop: hop))))
            #expect(r.type == 3 && r.code == 0)
        }
        guard case let .send(h) = Self.policy.check(Self.packet(src: "520:c662:fd00:9e92::1", dst: "52d::1", hop: 2)) else {
            Issue.record("not sent"); return
        }
        #expect(h.hopLimit == 2 && h.destination == IPv6Address("52d::1"))
    }

    @Test("no-route replies use the original source as both addresses (as Rust)")
    func noRoute() throws {
        let p = Self.packet(src: "520:c662:fd00:9e92::1", dst: "52d::1")
        let reply = try #require(OutboundPolicy.noRoute(for: p))
        let h = try #require(IPv6Header(reply))
        #expect(h.source == h.destination && h.source == IPv6Address("520:c662:fd00:9e92::1"))
        #expect(reply[40] == 1 && reply[41] == 0)
    }

    @Test("hop limits: below 2 expires, otherwise decremented; delivery stamps the header")
    func hopLimitSteps() {
        #expect(HopLimit.step(0) == .expired)
        #expect(HopLimit.step(1) == .expired)
        #expect(HopLimit.step(2) == .forward(1))
        #expect(HopLimit.step(64) == .forward(63))
        var p = Self.packet(src: "520::1", dst: "52d::1")
        HopLimit.stamp(&p, hopLimit: 62)
        #expect(IPv6Header(p)?.hopLimit == 62)
        var short: [UInt8] = [1, 2, 3]
        HopLimit.stamp(&short, hopLimit: 9)
        #expect(short == [1, 2, 3])
    }
}

@Suite struct PacketQueueTests {
    static let a = Subnet("400::/64")!, b = Subnet("401::/64")!

    @Test("per-subnet and total packet limits; take returns packets oldest first")
    func limits() {
        var q = PacketQueue<[UInt8]>(limits: .init(perSubnetPackets: 3, totalPackets: 5, perSubnetBytes: 1000, totalBytes: 1000))
        let a = Self.a, b = Self.b
        #expect((0..<3).map { q.enqueue([UInt8($0)], for: a) } == [.queued, .queued, .queued])
        #expect(q.enqueue([3], for: a) == .subnetFull)
        #expect(q.enqueue([10], for: b) == .queued)
        #expect(q.enqueue([11], for: b) == .queued)
        #expect(q.enqueue([12], for: b) == .full)
        #expect(q.count == 5 && q.count(for: a) == 3 && q.bytes == 5)
        #expect(q.take(a) == [[0], [1], [2]])
        #expect(q.take(a) == [])
        #expect(q.count == 2 && q.bytes == 2)
        #expect(q.enqueue([12], for: b) == .queued)
        #expect(q.subnets == [b])
    }

    @Test("byte limits bound memory whatever the packet count: per subnet, then in all")
    func byteLimits() {
        var q = PacketQueue<[UInt8]>(limits: .init(perSubnetPackets: 100, totalPackets: 100, perSubnetBytes: 3000, totalBytes: 5000))
        let big = [UInt8](repeating: 0, count: 1400)
        #expect(q.enqueue(big, for: Self.a) == .queued)
        #expect(q.enqueue(big, for: Self.a) == .queued)
        #expect(q.enqueue(big, for: Self.a) == .subnetFull)
        #expect(q.enqueue(big, for: Self.b) == .queued)
        #expect(q.enqueue(big, for: Self.b) == .full)
        #expect(q.enqueue([UInt8](repeating: 0, count: 800), for: Self.b) == .queued)
        #expect(q.bytes == 5000)
        _ = q.take(Self.a)
        #expect(q.bytes == 2200 && q.enqueue([UInt8](repeating: 0, count: 700), for: Self.b) == .queued)
    }

    @Test("the spec's packet counts, and byte limits that keep each queue to tens of MiB")
    func defaults() {
        #expect(PacketQueue<[UInt8]>.Limits.outbound.perSubnetPackets == 10_000 && PacketQueue<[UInt8]>.Limits.outbound.totalPackets == 1_000_000)
        #expect(PacketQueue<[UInt8]>.Limits.inbound.perSubnetPackets == 100 && PacketQueue<[UInt8]>.Limits.inbound.totalPackets == 10_000)
        #expect(PacketQueue<[UInt8]>.Limits.outbound.totalBytes == 32 << 20)
        #expect(PacketQueue<DataPacket>.Limits.forward.totalBytes == 8 << 20 && PacketQueue<DataPacket>.Limits.inbound.totalBytes == 8 << 20)
    }
}

@Suite struct OutOfBandICMPTests {
    static let reporter = Subnet("5aa:1:2:3::/64")!
    static let source = IPv6Address("520:c662:fd00:9e92:5d99:34ed:ab8:82ab")!
    static let destination = IPv6Address("52d:dc0:ab0c:851a:6e34:e79d:1f3f:15d3")!

    @Test("encode → decode round trip; the layout has the reporter's prefix:: and the original source")
    func roundTrip() throws {
        let payload = Vectors.vector("data.encrypted_l3_packet")["raw_data_hex"].hexBytes!
        let report = OutOfBandICMP(message: .timeExceeded, reporterSubnet: Self.reporter, originalSource: Self.source,
                                   originalDestination: Self.destination, originalPayload: payload)
        let bytes = report.encode()
        #expect(bytes.count == OutOfBandICMP.fixedLength + payload.count)
        #expect(try OutOfBandICMP(decoding: bytes) == report)
        let inner = try #require(IPv6Header(bytes[16..<56]))
        #expect(inner.source == IPv6Address("5aa:1:2:3::") && inner.destination == Self.source && inner.hopLimit == 64)
        #expect(bytes[56] == 3 && bytes[57] == 0)
    }

    @Test("payloads over 1232 bytes are not carried; bad lengths are rejected")
    func limits() {
        let big = OutOfBandICMP(message: .destinationUnreachable(.noRoute), reporterSubnet: Self.reporter, originalSource: Self.source,
                                originalDestination: Self.destination, originalPayload: [UInt8](repeating: 0, count: 1233))
        #expect(big.originalPayload.isEmpty)
        #expect(throws: WireError.self) { try OutOfBandICMP(decoding: [UInt8](repeating: 0x60, count: 63)) }
        #expect(throws: WireError.self) { try OutOfBandICMP(decoding: [UInt8](repeating: 0x60, count: 1297)) }
    }

    @Test("the reconstructed ICMPv6 comes from prefix:: to us, with the arrival hop limit and a valid checksum")
    func reconstruct() throws {
        let echo = Vectors.vector("data.encrypted_l3_packet")["ipv6_packet_hex"].hexBytes!
        let report = OutOfBandICMP(message: .timeExceeded, reporterSubnet: Self.reporter, originalSource: Self.source,
                                   originalDestination: Self.destination, originalPayload: [])
        let packet = report.reconstruct(originalPacket: echo, localAddress: Self.source, hopLimit: 61)
        let h = try #require(IPv6Header(packet))
        #expect(h.source == IPv6Address("5aa:1:2:3::") && h.destination == Self.source && h.hopLimit == 61)
        #expect(Array(packet[48...]) == echo)
        #expect(ICMPv6.checksum(source: h.source, destination: h.destination, message: packet[40...]) == 0)
    }
}
