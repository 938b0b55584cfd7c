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

    @Test("a node killed and restarted answers its dialler's packets for the old connection with a stateless reset: the dialler reconnects within seconds, not after the 60 s idle timeout")
    func restartReset() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b")
        let (_, aFromB) = try lab.link(b, a)
        try lab.startNode(a)
        try lab.startNode(b, arguments: Self.quic(aFromB))
        let target = try lab.address(of: a)
        #expect(lab.ping(from: b, to: target, within: 20), "B cannot reach A: \(lab.log(of: b))")
        lab.killNode(a)
        try lab.startNode(a)
        // Without the reset B would hold the dead connection until its idle timeout (60 s) or
        // until its neighbour timed out (over 40 s without IHU); the pings would fail till then.
        #expect(lab.ping(from: b, to: target, within: 20), "B did not reconnect to the restarted A: \(lab.log(of: b))")
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

    @Test("a QUIC link losing 2 % of its packets each way still carries a 16 MB TCP transfer through the overlay")
    func lossyLink() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b")
        let (_, bFromA) = try lab.link(a, b)
        for (ns, dev) in [(a, "v1a"), (b, "v1b")] {
            let r = NamespaceLab.run(["ip", "netns", "exec", ns, "ip6tables", "-A", "INPUT", "-i", dev, "-m", "statistic",
                                      "--mode", "random", "--probability", "0.02", "-j", "DROP"])
            try #require(r.status == 0, "ip6tables: \(r.output)")
        }
        try lab.startNode(b)
        try lab.startNode(a, arguments: Self.quic(bFromA))
        let target = try lab.address(of: b)
        #expect(lab.ping(from: a, to: target, within: 20), "A cannot reach B: \(lab.log(of: a))")
        // Before ngtcp2's missing probe timeout for datagrams was worked around, such a stream
        // stalled for good within a second or two.
        let size = 16 << 20
        let receiver = Process()
        receiver.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        receiver.arguments = ["ip", "netns", "exec", b, "python3", "-c", """
            import socket, sys
            s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("\(target)", 5201)); s.listen(1); s.settimeout(60)
            c, _ = s.accept(); c.settimeout(60); n = 0
            while True:
                d = c.recv(65536)
                if not d: break
                n += len(d)
            print(n)
            """]
        let out = Pipe()
        receiver.standardOutput = out
        try receiver.run()
        usleep(300_000)
        let sent = NamespaceLab.run(["ip", "netns", "exec", a, "python3", "-c", """
            import socket
            s = socket.create_connection(("\(target)", 5201), timeout=60)
            s.sendall(b"x" * \(size)); s.shutdown(socket.SHUT_WR); s.recv(1)
            """], timeout: 90)
        receiver.waitUntilExit()
        let received = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(sent.status == 0 && received == "\(size)", "sent: \(sent.output), received: \(received)")
    }
}
