import Foundation
import Testing

/// QUIC peers (spec §3.6) with the real binary in namespaces: control packets on the stream,
/// data packets in DATAGRAM frames.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct QUICNamespaceTests {
    static func quic(_ address: String) -> [String] { ["--peers", "quic://[\(address)]:9651"] }

    @Test("a line A–B–C over QUIC only pings end to end, full-size packets too; D joined to A over TCP reaches C")
    func line() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), c = try lab.host("c"), d = try lab.host("d")
        let (_, bFromA) = try lab.link(a, b)
        let (_, cFromB) = try lab.link(b, c)
        let (_, aFromD) = try lab.link(d, a)
        try lab.startNode(c)
        try lab.startNode(b, arguments: Self.quic(cFromB))
        try lab.startNode(a, arguments: Self.quic(bFromA))
        try lab.startNode(d, peers: [aFromD])
        let target = try lab.address(of: c)
        #expect(lab.ping(from: a, to: target, within: 20), "A cannot reach C over QUIC: \(lab.log(of: a))")
        // 1352 bytes of ICMP payload: a 1400-byte packet, the TUN MTU, in one datagram each way.
        let big = NamespaceLab.run(["ip", "netns", "exec", a, "ping", "-6", "-c", "3", "-s", "1352", "-W", "2", target])
        #expect(big.output.contains("3 received"), "full-size pings: \(big.output)")
        let peers = NamespaceLab.run(["ip", "netns", "exec", a, NamespaceLab.binary, "peers", "list", "--json"]).output
        #expect(peers.contains("\"proto\": \"quic\"") && peers.contains("\"alive\""), "\(peers)")
        let routes = NamespaceLab.run(["ip", "netns", "exec", a, NamespaceLab.binary, "routes", "selected", "--json"]).output
        #expect(routes.contains("QUIC -> [\(bFromA)]:9651"), "\(routes)")
        #expect(lab.ping(from: d, to: target, within: 20), "D cannot reach C over TCP then QUIC: \(lab.log(of: d))")
    }

    @Test("triangle: A routes to B over their QUIC link (cost 7) rather than over C by TCP; cutting it fails over")
    func failover() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), c = try lab.host("c")
        let (_, bFromA) = try lab.link(a, b)  // link 1: QUIC
        let (_, cFromA) = try lab.link(a, c)
        let (_, bFromC) = try lab.link(c, b)
        try lab.startNode(b)
        try lab.startNode(c, peers: [bFromC])
        try lab.startNode(a, peers: [cFromA], arguments: Self.quic(bFromA))
        let target = try lab.address(of: b)
        #expect(lab.ping(from: a, to: target, within: 20), "A cannot reach B: \(lab.log(of: a))")
        // Link costs start high and settle with the Hello/IHU delays: the route moves to QUIC then.
        var routes = ""
        for _ in 0..<40 {
            routes = NamespaceLab.run(["ip", "netns", "exec", a, NamespaceLab.binary, "routes", "selected", "--json"]).output
            if routes.contains("QUIC -> [\(bFromA)]:9651") { break }
            usleep(500_000)
        }
        #expect(routes.contains("QUIC -> [\(bFromA)]:9651"), "A's route to B is not the QUIC link: \(routes)")
        lab.cut(link: 1, in: a)
        // A notices B gone over QUIC (no IHU for 43 s at worst) and moves to the path over C.
        #expect(lab.ping(from: a, to: target, within: 75), "no failover after cutting the QUIC link: \(lab.log(of: a))")
    }

    @Test("a node started with --disable-quic has no QUIC socket; a quic:// peer of it never connects")
    func disabled() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b")
        let (_, bFromA) = try lab.link(a, b)
        try lab.startNode(b, arguments: ["--disable-quic"])
        try lab.startNode(a, arguments: Self.quic(bFromA))
        let sockets = NamespaceLab.run(["ip", "netns", "exec", b, "ss", "-Hunl", "sport", "= :9651"]).output
        #expect(sockets.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "B listens on UDP 9651: \(sockets)")
        #expect(!lab.ping(from: a, to: try lab.address(of: b), within: 3), "A reached B")
        let peers = NamespaceLab.run(["ip", "netns", "exec", a, NamespaceLab.binary, "peers", "list", "--json"]).output
        #expect(!peers.contains("\"alive\""), "\(peers)")
    }
}
