import MyceliumCore
import MyceliumTesting
import Testing

@Suite struct InboundPolicyTests {
    static let vector = Vectors.vector("data.encrypted_l3_packet")

    @Test("Rust traffic passes: the vector's inner header matches its outer header")
    func rustVector() throws {
        let frame = try #require(Self.vector["frame_hex"].hexBytes)
        guard case let .data(outer) = try FrameDecoder.decodeSingle(frame) else { Issue.record("not data"); return }
        let inner = try #require(Self.vector["ipv6_packet_hex"].hexBytes)
        #expect(InboundPolicy.check(inner: inner, outerSource: outer.source, outerDestination: outer.destination) == .deliver)
        // The decrypted plaintext of the vector carries the same packet after its user header.
        let plaintext = try #require(Self.vector["plaintext_hex"].hexBytes)
        #expect(InboundPolicy.check(inner: plaintext[UserHeader.length...], outerSource: outer.source,
                                    outerDestination: outer.destination) == .deliver)
    }

    @Test("a spoofed inner source, a foreign inner destination, or a short packet is refused")
    func lies() throws {
        let inner = try #require(Self.vector["ipv6_packet_hex"].hexBytes)
        let src = IPv6Header(inner)!.source, dst = IPv6Header(inner)!.destination
        let other = IPv6Address("5aa::1")!
        #expect(InboundPolicy.check(inner: inner, outerSource: other, outerDestination: dst) == .spoofedSource)
        #expect(InboundPolicy.check(inner: inner, outerSource: src, outerDestination: other) == .foreignDestination)
        // The relay case: inner destination on the host's other networks.
        var relay = inner
        for i in 24..<40 { relay[i] = IPv6Address("2001:db8::99")!.bytes[i - 24] }
        #expect(InboundPolicy.check(inner: relay, outerSource: src, outerDestination: dst) == .foreignDestination)
        #expect(InboundPolicy.check(inner: inner.prefix(39), outerSource: src, outerDestination: dst) == .malformed)
        var v4 = inner
        v4[0] = 0x45
        #expect(InboundPolicy.check(inner: v4, outerSource: src, outerDestination: dst) == .malformed)
    }

    static let ours = Subnet("520:c662:fd00:9e92::/64")!
    static let reporter = Subnet("5aa:1:2:3::/64")!
    static let destination = IPv6Address("52d:dc0:ab0c:851a:6e34:e79d:1f3f:15d3")!
    static let source = IPv6Address("520:c662:fd00:9e92:5d99:34ed:ab8:82ab")!

    static func report(_ message: ICMPv6.Message = .timeExceeded, source: IPv6Address = source,
                       destination: IPv6Address = destination) -> OutOfBandICMP {
        try! OutOfBandICMP(decoding: OutOfBandICMP(message: message, reporterSubnet: reporter, originalSource: source,
                                                   originalDestination: destination, originalPayload: [1, 2, 3]).encode())
    }

    @Test("an out-of-band report is taken only from its reporter's prefix::, about our packet, as an ICMPv6 error")
    func reports() {
        let outer = Self.reporter.ipv6!
        #expect(InboundPolicy.checkReport(Self.report(), outerSource: outer, localSubnet: Self.ours))
        #expect(InboundPolicy.checkReport(Self.report(.destinationUnreachable(.noRoute)), outerSource: outer, localSubnet: Self.ours))
        // Sent from another address than the reporter it names, or from a host address.
        #expect(!InboundPolicy.checkReport(Self.report(), outerSource: IPv6Address("5bb::")!, localSubnet: Self.ours))
        #expect(!InboundPolicy.checkReport(Self.report(), outerSource: IPv6Address("5aa:1:2:3::1")!, localSubnet: Self.ours))
        // About a packet that did not come from us.
        #expect(!InboundPolicy.checkReport(Self.report(source: IPv6Address("5cc::1")!), outerSource: outer, localSubnet: Self.ours))
        // Not an error message (an echo request smuggled as a report).
        var echo = Self.report()
        echo.type = 128
        #expect(!InboundPolicy.checkReport(echo, outerSource: outer, localSubnet: Self.ours))
    }

    @Test("the reported packet must be the one we sent to the reported destination")
    func reportedPacket() throws {
        let inner = try #require(Self.vector["ipv6_packet_hex"].hexBytes)
        #expect(InboundPolicy.checkReportedPacket(inner[...], report: Self.report()))
        #expect(!InboundPolicy.checkReportedPacket(inner[...], report: Self.report(destination: IPv6Address("5dd::1")!)))
        #expect(!InboundPolicy.checkReportedPacket(inner.prefix(20), report: Self.report()))
    }
}

@Suite struct TokenBucketTests {
    @Test("starts full, spends one token per take, refills with time up to the burst")
    func refill() {
        var b = TokenBucket(burst: 3, rate: 2, perMs: 1000, now: 0)
        #expect((0..<4).map { _ in b.take(now: 0) } == [true, true, true, false])
        let early = b.take(now: 499), onTime = b.take(now: 500)
        #expect(!early && onTime)
        #expect(b.available(now: 100_000) == 3)
    }

    @Test("a clock that goes backwards or jumps to the extremes never traps or over-fills")
    func hostileClock() {
        var b = TokenBucket(burst: 2, rate: 1, perMs: 60_000, now: 1_000)
        let taken = (0..<3).map { _ in b.take(now: 1_000) }
        #expect(taken == [true, true, false])
        let backwards = b.take(now: -5)
        #expect(!backwards)
        #expect(b.available(now: .max) == 2)
        #expect(b.available(now: .min) == 2)
    }
}
