import MyceliumCore
import MyceliumCrypto
import MyceliumDatapath
import MyceliumRouting
import MyceliumTesting
import Testing

/// Spec §4, in-process: cores joined by loopback links on a virtual clock (`DatapathLab`).
@Suite struct DatapathCoreTests {
    static func icmpType(_ packet: [UInt8]) -> UInt8? {
        guard let h = IPv6Header(packet), h.nextHeader == ICMPv6.nextHeader, packet.count > 40 else { return nil }
        return packet[40]
    }

    @Test("two cores: a TUN packet is sealed, carried, opened and written to the other TUN with the hop limit stamped")
    func localDelivery() throws {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        let ping = TestPackets.echoRequest(from: a.address, to: b.address, hopLimit: 64)
        lab.fromTun(0, ping)
        #expect(lab.pending.count == 1)
        let onWire = try #require(lab.pending.first)
        #expect(onWire.source == a.address && onWire.destination == b.address && onWire.hopLimit == 63)
        #expect(!onWire.payload.starts(with: ping[0..<40]), "the payload is sealed")
        #expect(lab.run() == 1)
        let delivered = try #require(lab.nodes[1].tun.written.first)
        var expected = ping
        expected[IPv6Header.hopLimitOffset] = 62  // one step at A, one at B (§4.4, §4.5)
        #expect(delivered == expected)
        #expect(lab.nodes[1].core.stats.delivered == 1 && lab.nodes[0].core.stats.tunPacketsIn == 1)
        #expect(lab.nodes[0].tun.written.isEmpty && lab.nodes[0].routeRequests.isEmpty)
    }

    @Test("three cores in a line: the middle one forwards without opening, and holds no key for either end")
    func forwardingWithoutDecryption() throws {
        let lab = DatapathLab(count: 3)
        lab.line()
        lab.installShortestPaths()
        let a = lab.nodes[0].identity, c = lab.nodes[2].identity
        let ping = TestPackets.echoRequest(from: a.address, to: c.address)
        lab.fromTun(0, ping)
        let sealed = try #require(lab.pending.first).payload
        #expect(lab.run() == 2)
        #expect(lab.nodes[2].tun.written.count == 1)
        #expect(lab.nodes[1].tun.written.isEmpty && lab.nodes[1].core.stats.delivered == 0)
        #expect(lab.nodes[1].core.cachedCiphers == 0 && lab.nodes[1].core.stats.decryptFailures == 0)
        #expect(lab.nodes[1].sentToPeers == 1)
        // The relay passed the very bytes A sealed.
        lab.fromTun(0, ping)
        lab.run(maxSteps: 1)
        #expect(try #require(lab.pending.first).payload.count == sealed.count)
    }

    @Test("a packet tampered with on the way is not opened: counted, nothing written")
    func tamperedPayload() {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        lab.fromTun(0, TestPackets.echoRequest(from: lab.nodes[0].identity.address, to: lab.nodes[1].identity.address))
        var packets = lab.pending
        packets[0].payload[5] ^= 0x01
        lab.pending = packets
        lab.run()
        #expect(lab.nodes[1].tun.written.isEmpty && lab.nodes[1].core.stats.decryptFailures == 1)
    }

    @Test("hop limit: a packet that runs out at the relay is dropped there and reported out of band to its source")
    func hopLimitExpires() throws {
        let lab = DatapathLab(count: 3)
        lab.line()
        lab.installShortestPaths()
        let a = lab.nodes[0].identity, c = lab.nodes[2].identity
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: c.address, hopLimit: 2))
        lab.run()
        #expect(lab.nodes[1].core.stats.droppedHopLimit == 1)
        #expect(lab.nodes[2].tun.written.isEmpty)
        // B's report travelled back, checked against what A sent, and became a time exceeded.
        let icmp = try #require(lab.nodes[0].tun.written.first)
        #expect(Self.icmpType(icmp) == 3)
        #expect(IPv6Header(icmp)?.destination == a.address)
        #expect(lab.nodes[0].core.stats.droppedSpoofed == 0)
    }

    @Test("hop limit below 2 from the TUN: time exceeded straight back to the TUN, nothing sent")
    func hopLimitAtOrigin() {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        lab.fromTun(0, TestPackets.echoRequest(from: lab.nodes[0].identity.address, to: lab.nodes[1].identity.address, hopLimit: 1))
        #expect(lab.pending.isEmpty)
        #expect(lab.nodes[0].tun.written.map(Self.icmpType) == [3])
    }

    @Test("no route yet: the packet waits, the router is asked once per packet, the answer releases it")
    func queuedUntilRouteAcquired() {
        let lab = DatapathLab(count: 3)
        lab.line()
        let a = lab.nodes[0].identity, c = lab.nodes[2].identity
        for seq in 1...3 { lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: c.address, sequence: UInt16(seq))) }
        #expect(lab.pending.isEmpty && lab.nodes[0].core.queuedPackets == 3)
        #expect(lab.nodes[0].routeRequests == [c.address, c.address, c.address])
        lab.installShortestPaths()
        lab.routeEvent(0, .routeAcquired(c.subnet))
        #expect(lab.nodes[0].core.queuedPackets == 0)
        lab.run()
        #expect(lab.nodes[2].tun.written.count == 3)
        #expect(lab.nodes[0].core.stats.tunPacketsIn == 3, "released packets are not counted twice")
    }

    @Test("a packet whose next hop's connection is gone waits, the route is asked for, and the next table with a route sends it on")
    func nextHopGone() throws {
        let lab = DatapathLab(count: 3)
        lab.line()
        lab.installShortestPaths()
        let a = lab.nodes[0].identity, c = lab.nodes[2].identity
        // What the shell had in hand when the connection to B turned out to be gone.
        let actions = lab.actionsFromTun(0, TestPackets.echoRequest(from: a.address, to: c.address))
        guard case let .toPeer(sealed, _)? = actions.first else { Issue.record("not sent: \(actions)"); return }
        lab.nextHopGone(0, sealed)
        #expect(lab.nodes[0].core.queuedPackets == 1 && lab.nodes[0].routeRequests == [c.address])
        #expect(lab.pending.isEmpty)
        // A table without a route to C keeps it waiting; one with a route sends it on.
        lab.setTable(0, entries: lab.shortestPathEntries(from: 0).filter { $0.subnet != c.subnet })
        #expect(lab.nodes[0].core.queuedPackets == 1 && lab.pending.isEmpty)
        lab.setTable(0, entries: lab.shortestPathEntries(from: 0))
        #expect(lab.nodes[0].core.queuedPackets == 0)
        lab.run()
        #expect(lab.nodes[2].tun.written.count == 1)
    }

    @Test("no route: the query fails, the waiting packets become ICMPv6 no-route on the TUN")
    func queuedUntilQueryFails() {
        let lab = DatapathLab(count: 2)
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: b.address))
        lab.routeEvent(0, .queryFailed(b.subnet))
        #expect(lab.nodes[0].tun.written.map(Self.icmpType) == [1])
        #expect(lab.nodes[0].core.stats.droppedNoRoute == 1 && lab.nodes[0].core.queuedPackets == 0)
    }

    @Test("a relay without a route holds encrypted packets until the router answers")
    func relayQueues() {
        let lab = DatapathLab(count: 3)
        lab.line()
        lab.installShortestPaths()
        let c = lab.nodes[2].identity
        lab.setTable(1, entries: lab.shortestPathEntries(from: 1).filter { $0.subnet != c.subnet })
        lab.fromTun(0, TestPackets.echoRequest(from: lab.nodes[0].identity.address, to: c.address))
        lab.run()
        #expect(lab.nodes[1].core.queuedPackets == 1 && lab.nodes[1].routeRequests == [c.address])
        lab.installShortestPaths()
        lab.routeEvent(1, .routeAcquired(c.subnet))
        lab.run()
        #expect(lab.nodes[2].tun.written.count == 1)
    }

    @Test("the receiver does not know the sender yet: the packet waits for the sender's key")
    func inboundWaitsForKey() {
        let lab = DatapathLab(count: 2)
        lab.line()
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        lab.setTable(0, entries: lab.shortestPathEntries(from: 0))
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: b.address))
        lab.run()
        #expect(lab.nodes[1].tun.written.isEmpty && lab.nodes[1].core.queuedPackets == 1)
        #expect(lab.nodes[1].routeRequests == [a.address])
        lab.setTable(1, entries: lab.shortestPathEntries(from: 1))
        lab.routeEvent(1, .routeAcquired(a.subnet))
        #expect(lab.nodes[1].tun.written.count == 1)
    }

    @Test("a route about to expire still carries the packet and asks the router to refresh it")
    func almostExpiredRoute() {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths(expiresIn: ProtocolConstants.routeAlmostExpiredMs - 1)
        let b = lab.nodes[1].identity
        lab.fromTun(0, TestPackets.echoRequest(from: lab.nodes[0].identity.address, to: b.address))
        #expect(lab.pending.count == 1 && lab.nodes[0].routeRequests == [b.address])
    }

    @Test("destinations outside 400::/7 are dropped at once, from the TUN (with ICMPv6) and from peers")
    func unroutable() {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        let a = lab.nodes[0].identity
        let outside = IPv6Address("2001:db8::1")!
        lab.fromTun(0, TestPackets.echoRequest(from: a.address, to: outside))
        #expect(lab.nodes[0].tun.written.map(Self.icmpType) == [1] && lab.nodes[0].routeRequests.isEmpty)
        lab.fromPeer(1, DataPacket(hopLimit: 10, source: a.address, destination: outside, payload: [1, 2, 3]))
        #expect(lab.nodes[1].core.stats.droppedUnroutable == 1 && lab.nodes[1].routeRequests.isEmpty && lab.pending.isEmpty)
    }

    @Test("a sealer that lies about the inner source is caught after opening: dropped, counted, audited")
    func spoofedInnerSource() throws {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        let forged = TestPackets.echoRequest(from: IPv6Address("4ff::1")!, to: b.address)
        let cipher = PacketCipher(key: try #require(a.secretKey.sharedSecret(with: b.publicKey)))
        let sealed = cipher.seal(UserHeader(type: .ipv6).bytes + forged)
        lab.fromPeer(1, DataPacket(hopLimit: 10, source: a.address, destination: b.address, payload: sealed))
        #expect(lab.nodes[1].tun.written.isEmpty && lab.nodes[1].core.stats.droppedSpoofed == 1)
        let audit = try #require(lab.nodes[1].audits.first)
        #expect(audit.innerSource == IPv6Address("4ff::1")! && audit.outerSource == a.address)
    }

    @Test("an out-of-band report about a packet we never sent is refused")
    func forgedOutOfBand() throws {
        let lab = DatapathLab(count: 2)
        lab.line()
        lab.installShortestPaths()
        let a = lab.nodes[0].identity, b = lab.nodes[1].identity
        let cipher = PacketCipher(key: try #require(b.secretKey.sharedSecret(with: a.publicKey)))
        let report = OutOfBandICMP(message: .timeExceeded, reporterSubnet: b.subnet, originalSource: a.address,
                                   originalDestination: b.address, originalPayload: [UInt8](repeating: 7, count: 80))
        let sealed = cipher.seal(UserHeader(type: .outOfBandICMP).bytes + report.encode())
        lab.fromPeer(0, DataPacket(hopLimit: 10, source: b.subnet.ipv6!, destination: a.address, payload: sealed))
        #expect(lab.nodes[0].tun.written.isEmpty && lab.nodes[0].core.stats.droppedSpoofed == 1)
    }

    @Test("cipher cache: bounded, the least recently used key goes first")
    func cipherCacheEviction() {
        let lab = DatapathLab(count: 4, cipherCache: 2)
        for other in 1...3 { lab.link(0, other) }
        lab.installShortestPaths()
        let a = lab.nodes[0].identity.address
        func send(_ to: Int) { lab.fromTun(0, TestPackets.echoRequest(from: a, to: lab.nodes[to].identity.address)) }
        send(1); send(2); send(1)
        #expect(lab.nodes[0].core.stats.cipherEvictions == 0)
        send(3)  // evicts 2, the least recently used, not 1
        #expect(lab.nodes[0].core.stats.cipherEvictions == 1 && lab.nodes[0].core.cachedCiphers == 2)
        send(1)
        #expect(lab.nodes[0].core.stats.cipherEvictions == 1, "1 was kept")
        send(2)
        #expect(lab.nodes[0].core.stats.cipherEvictions == 2)
        lab.run()
        #expect(lab.nodes[1].tun.written.count == 3 && lab.nodes[2].tun.written.count == 2 && lab.nodes[3].tun.written.count == 1)
    }

    @Test("a TUN flood towards a subnet nobody answers for is bounded per subnet: dropped, counted, ICMP rate-limited")
    func outboundQueueBound() {
        let lab = DatapathLab(count: 1)
        let a = lab.nodes[0].identity.address
        let nowhere = IPv6Address("5ff:1:2:3::9")!
        let limit = PacketQueueLimits.outbound.perSubnetPackets
        let packet = TestPackets.echoRequest(from: a, to: nowhere, payload: 8)
        for _ in 0..<(limit + 500) { lab.fromTun(0, packet) }
        let core = lab.nodes[0].core
        #expect(core.queuedPackets == limit)
        #expect(core.stats.droppedQueueFull == 500)
        // One no-route ICMP per dropped packet, within the TUN ICMP budget.
        #expect(lab.nodes[0].tun.written.count == DatapathLimits.tunICMPBurst)
        #expect(core.stats.icmpRateLimited == UInt64(500 - DatapathLimits.tunICMPBurst))
    }

    @Test("ICMP budgets refill with the virtual clock")
    func icmpBudgetRefills() {
        let lab = DatapathLab(count: 1)
        let a = lab.nodes[0].identity.address
        let outside = IPv6Address("2001:db8::1")!
        for _ in 0..<(DatapathLimits.tunICMPBurst + 10) { lab.fromTun(0, TestPackets.echoRequest(from: a, to: outside)) }
        #expect(lab.nodes[0].tun.written.count == DatapathLimits.tunICMPBurst)
        lab.now = lab.now + 1_000
        for _ in 0..<10 { lab.fromTun(0, TestPackets.echoRequest(from: a, to: outside)) }
        #expect(lab.nodes[0].tun.written.count == DatapathLimits.tunICMPBurst + 10)
    }
}
