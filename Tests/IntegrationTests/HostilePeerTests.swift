import Foundation
import MyceliumCore
import Testing

/// The real daemon against a peer that speaks the protocol and lies (HostilePeer), in network
/// namespaces: victim V with an honest neighbour H and the hostile peer E. After every attack
/// class V must still run, still reach H over the overlay (its Hellos on time: H never declared
/// dead), keep its memory bounded, and show the drops in its counters.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct HostilePeerTests {
    static let metricsPort = 9990

    struct Setup {
        let lab: NamespaceLab
        let v: String, h: String, e: String
        let vFromE: String, eUnderlay: String, hUnderlay: String
        let hAddress: String
        let victimKey: PublicKey

        init() throws {
            lab = try NamespaceLab()
            v = try lab.host("v"); h = try lab.host("h"); e = try lab.host("e")
            let (vFromH, hAddr) = try lab.link(v, h)
            (vFromE, eUnderlay) = try lab.link(v, e)
            hUnderlay = hAddr
            try lab.startNode(v, arguments: ["--metrics-api-address", "[::1]:\(HostilePeerTests.metricsPort)"])
            try lab.startNode(h, peers: [vFromH])
            hAddress = try lab.address(of: h)
            victimKey = try lab.publicKey(of: v)
            guard lab.ping(from: v, to: hAddress, within: 20) else { throw LabError("V cannot reach H: \(lab.log(of: v))") }
        }

        func metric(_ name: String) -> Double { lab.metrics(of: v, port: HostilePeerTests.metricsPort)[name] ?? 0 }
        var isRunning: Bool { lab.nodes[v]!.process.isRunning }

        /// A hostile peer connected to V; reading what V sends unless `drain` is false, and with
        /// its /64 announced (V then learns its key) when `announce` is set.
        func hostile(drain: Bool = true, announce: Bool = false) throws -> HostilePeer {
            let evil = try HostilePeer(namespace: e, address: vFromE)
            if drain { evil.drain() }
            if announce {
                evil.send(evil.announce())
                guard waitUntilDelivering(evil) else { throw LabError("V never delivered E's honest packet: \(lab.log(of: v))") }
            }
            return evil
        }

        /// Sends an honest data packet until V delivers one (it must first learn our route).
        func waitUntilDelivering(_ peer: HostilePeer) -> Bool {
            let before = metric("mycelium_router_packets_routed{verdict=\"local\"}")
            for _ in 0..<20 {
                peer.send([peer.dataPacket(to: victimKey)])
                usleep(250_000)
                if metric("mycelium_router_packets_routed{verdict=\"local\"}") > before { return true }
            }
            return false
        }
    }

    @Test("lies and floods: no trap, no spoofed or relayed packet delivered, rate limits hold, H stays reachable")
    func liesAndFloods() throws {
        let s = try Setup()
        let rssBefore = s.lab.rssKiB(of: s.v)
        let evil = try HostilePeer(namespace: s.e, address: s.vFromE)
        evil.drain()
        #expect(evil.send(evil.announce()))
        // The harness seals correctly: an honest packet is delivered (so the drops below are
        // the inner-header check, not a decryption failure).
        #expect(s.waitUntilDelivering(evil), "V never delivered E's honest packet: \(s.lab.log(of: s.v))")

        // Spoofed sources (H's address inside E's packet) and relays to the host's networks.
        let delivered = s.metric("mycelium_router_packets_routed{verdict=\"local\"}")
        let spoofedBefore = s.metric("mycelium_datapath_dropped{reason=\"spoofed\"}")
        let hostNetwork = IPv6Address(s.hUnderlay)!
        evil.send((0..<50).map { _ in evil.dataPacket(to: s.victimKey, innerSource: IPv6Address(s.hAddress)!) })
        evil.send((0..<50).map { _ in evil.dataPacket(to: s.victimKey, innerDestination: hostNetwork) })
        // Packets whose outer destination can never be routed.
        let outside = IPv6Address("2001:db8::1")!
        evil.send((0..<100).map { _ in
            .data(DataPacket(hopLimit: 64, source: evil.identity.address, destination: outside, payload: [UInt8](repeating: 1, count: 64)))
        })

        // The one-frame crash, then floods of every control TLV.
        let randomSubnet = { Subnet(IPv6Address(high: 0x0400_0000_0000_0000 | UInt64.random(in: 0..<(1 << 56)), low: 0), prefixLength: 64)! }
        #expect(evil.send(.routeRequest(RouteRequest(generation: 255, prefix: randomSubnet()))))
        var flood: [Packet] = []
        for i in 0..<5_000 {
            flood.append(.control(.hello(Hello(seqno: SeqNo(UInt16(i)), interval: 2000))))
            flood.append(.control(.routeRequest(RouteRequest(generation: 0, prefix: randomSubnet()))))
            flood.append(.control(.routeRequest(RouteRequest(generation: 0, prefix: nil))))
            // Updates for /64s E does not own, and a /128 hijack of H's address with H's key.
            flood.append(.control(.update(Update(interval: 30_000, seqno: SeqNo(1), metric: .zero, subnet: randomSubnet(),
                                                 routerId: evil.routerId))))
        }
        #expect(evil.send(flood))
        usleep(1_500_000)

        #expect(s.isRunning, "V died: \(s.lab.log(of: s.v))")
        #expect(s.metric("mycelium_router_packets_routed{verdict=\"local\"}") == delivered)
        #expect(s.metric("mycelium_datapath_dropped{reason=\"spoofed\"}") - spoofedBefore == 100)
        #expect(s.metric("mycelium_datapath_dropped{reason=\"unroutable\"}") >= 100)
        #expect(s.metric("mycelium_router_tlv_rate_limited") > 9_000)
        #expect(s.metric("mycelium_router_update_denied") >= 5_000)
        #expect(s.lab.ping(from: s.v, to: s.hAddress, within: 5), "V cannot reach H after the attacks")
        #expect(s.metric("mycelium_router_peer_died") == 0, "an honest neighbour was declared dead")
        let log = s.lab.log(of: s.v)
        #expect(log.contains("dropped a data packet: inner source differs from the sender"))
        #expect(log.contains("refused from a peer: control TLV over its rate"))
        // Audit lines are rate-limited themselves: 10 000 refusals, a handful of lines.
        #expect(log.components(separatedBy: "refused from a peer: control TLV over its rate").count - 1 <= 10)
        let rssAfter = s.lab.rssKiB(of: s.v)
        #expect(rssAfter - rssBefore < 64 * 1024, "RSS grew from \(rssBefore) KiB to \(rssAfter) KiB")
    }

    @Test("connection limits: at most 8 inbound connections from one address, the rest refused and counted")
    func connectionLimits() throws {
        let s = try Setup()
        var peers: [HostilePeer] = []
        for _ in 0..<12 { if let p = try? HostilePeer(namespace: s.e, address: s.vFromE) { peers.append(p) } }
        usleep(500_000)
        let open = peers.filter { !$0.isClosedByVictim }.count
        #expect(open == 8, "\(open) of \(peers.count) connections stayed open")
        #expect(s.metric("mycelium_peers_refused{reason=\"inbound_limit\"}") >= 4)
        #expect(s.lab.ping(from: s.v, to: s.hAddress, within: 5))
    }

    @Test("a peer that does not read: data to it dropped at its outbox limit, the peer closed, memory flat")
    func peerThatDoesNotRead() throws {
        let s = try Setup()
        let evil = try s.hostile(drain: false, announce: true)
        let rssBefore = s.lab.rssKiB(of: s.v)
        // Traffic from V's host to E, which never reads: 40 s of UDP as fast as Python sends.
        let sender = try s.lab.udpFlood(from: s.v, to: evil.identity.address, seconds: 40)
        defer { NamespaceLab.terminate(sender) }
        // Closed by V: its outbox limit or stall timer (an audit line says which, and the
        // close is a RST), or the TCP user timeout on a zero window (the kernel aborts after
        // 15 s without a word to E), whichever comes first. So V's own sockets are the judge.
        var closedAfter: Int?
        var peakRss = rssBefore
        for second in 0..<50 {
            usleep(1_000_000)
            peakRss = max(peakRss, s.lab.rssKiB(of: s.v))
            let sockets = NamespaceLab.run(["ip", "netns", "exec", s.v, "ss", "-Htn", "state", "established", "dst", "[\(s.eUnderlay)]"])
            if sockets.status == 0, sockets.output.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
                closedAfter = second + 1
                break
            }
        }
        #expect(closedAfter != nil, "the peer that does not read was not closed: \(s.lab.log(of: s.v).suffix(2000))")
        #expect(s.metric("mycelium_datapath_dropped{reason=\"peer_busy\"}") > 0)
        #expect(peakRss - rssBefore < 64 * 1024, "RSS grew from \(rssBefore) KiB to \(peakRss) KiB")
        #expect(s.isRunning)
        // The local flood itself fills V's TUN backlog (dropped and counted, by design); once
        // it stops, V reaches H at once.
        NamespaceLab.terminate(sender)
        #expect(s.lab.ping(from: s.v, to: s.hAddress, within: 10), "V cannot reach H after the stalled peer")
    }
}
