import MyceliumCore
import MyceliumNode
import MyceliumSystem
import MyceliumTesting
import NIOPosix
import Testing

@Suite struct LANDiscoveryTests {
    static let own = RouterId(publicKey: PublicKey(bytes: [UInt8](repeating: 1, count: 32))!, random: 7)
    static let other = RouterId(publicKey: PublicKey(bytes: [UInt8](repeating: 2, count: 32))!, random: 9)
    static let linkLocal = IPv6Address("fe80::1234")!

    static func verdict(_ source: IPv6Address, _ payload: [UInt8], privateNetwork: Bool = false) -> LANDiscovery.Verdict {
        LANDiscovery.verdict(source: source, scopeId: 3, interfaces: [2, 3], payload: payload, ownRouterId: own,
                             privateNetwork: privateNetwork)
    }

    @Test("a beacon that arrived on an interface discovery does not run on brings no peer")
    func otherInterface() {
        let beacon = DiscoveryBeacon(tcpPort: 9651, routerId: Self.other).encode()
        let verdict = LANDiscovery.verdict(source: Self.linkLocal, scopeId: 4, interfaces: [2, 3], payload: beacon,
                                           ownRouterId: Self.own, privateNetwork: false)
        guard case .dropped = verdict else { Issue.record("accepted: \(verdict)"); return }
    }

    @Test("a valid beacon becomes a tcp:// (or, in a private network, tls://) peer on the receiving interface")
    func valid() {
        let beacon = DiscoveryBeacon(tcpPort: 9651, routerId: Self.other).encode()
        #expect(Self.verdict(Self.linkLocal, beacon) == .peer(try! Endpoint(parsing: "tcp://[fe80::1234%3]:9651")))
        #expect(Self.verdict(Self.linkLocal, beacon, privateNetwork: true) == .peer(try! Endpoint(parsing: "tls://[fe80::1234%3]:9651")))
    }

    @Test("our own beacon is ignored; malformed or off-link datagrams are dropped", arguments: [
        ("own router id", linkLocal, DiscoveryBeacon(tcpPort: 9651, routerId: own).encode(), false),
        ("49 bytes", linkLocal, Array(DiscoveryBeacon(tcpPort: 9651, routerId: other).encode().prefix(49)), true),
        ("51 bytes", linkLocal, DiscoveryBeacon(tcpPort: 9651, routerId: other).encode() + [0], true),
        ("bad magic", linkLocal, [UInt8]("mycelixm".utf8) + DiscoveryBeacon(tcpPort: 1, routerId: other).encode().dropFirst(8), true),
        ("global source", IPv6Address("2001:db8::1")!, DiscoveryBeacon(tcpPort: 9651, routerId: other).encode(), true),
        ("fe80::/10 but not fe80::/64", IPv6Address("fe80:0:0:1::1")!, DiscoveryBeacon(tcpPort: 9651, routerId: other).encode(), true),
        ("port 0", linkLocal, DiscoveryBeacon(tcpPort: 0, routerId: other).encode(), true),
        ("empty", linkLocal, [], true),
    ])
    func rejected(label: String, source: IPv6Address, payload: [UInt8], isDrop: Bool) {
        let verdict = Self.verdict(source, payload)
        if isDrop {
            guard case .dropped = verdict else { Issue.record("\(label): \(verdict)"); return }
        } else {
            #expect(verdict == .own, "\(label)")
        }
    }

    static func interface(_ name: String, up: Bool = true, loopback: Bool = false, p2p: Bool = false, multicast: Bool = true,
                          linkLocal: Bool = true) -> NetworkInterfaces.Interface {
        .init(name: name, index: 5, isUp: up, isLoopback: loopback, isPointToPoint: p2p, supportsMulticast: multicast,
              hasLinkLocal: linkLocal)
    }

    @Test("interfaces: up, multicast, not loopback/point-to-point/our TUN, with a link-local address; or only those named")
    func eligible() {
        let all = [
            Self.interface("eth0"), Self.interface("lo", loopback: true), Self.interface("mycelium", p2p: true),
            Self.interface("tun1"), Self.interface("down0", up: false), Self.interface("nomc0", multicast: false),
            Self.interface("v4only0", linkLocal: false), Self.interface("eth1"),
        ]
        #expect(LANDiscovery.eligible(all, only: [], tunName: "tun1").map(\.name) == ["eth0", "eth1"])
        #expect(LANDiscovery.eligible(all, only: ["eth1", "lo"], tunName: nil).map(\.name) == ["eth1"])
    }

    @Test("a discovered peer that cannot be reached is forgotten after three attempts")
    func forgotten() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Attempts at 0, 1 and 2 s: the first check is far from the third failure even on a loaded machine.
        let node = try await PeeringTests.makeNode(group, seed: 31, redialMs: 1000)
        // Port 1 on loopback refuses at once.
        node.peers.discovered(try Endpoint(parsing: "tcp://127.0.0.1:1"))
        #expect(await node.peers.peers().map(\.type) == [.linkLocalDiscovery])
        var gone = false
        for _ in 0..<100 where !gone {  // at most 10 s
            try await Task.sleep(for: .milliseconds(100))
            gone = await node.peers.peers().isEmpty
        }
        #expect(gone)
        await node.peers.shutdown()
        try await group.shutdownGracefully()
    }
}
