import Foundation
import Testing

let labAvailable = getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/net/tun")

/// The real binary in network namespaces joined by veth pairs, driven as a user would.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct OverlayTests {
    @Test("line A–B–C: A pings C's overlay address through B")
    func line() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), c = try lab.host("c")
        let (_, bFromA) = try lab.link(a, b)
        let (_, cFromB) = try lab.link(b, c)
        try lab.startNode(c)
        try lab.startNode(b, peers: [cFromB])
        try lab.startNode(a, peers: [bFromA])
        let target = try lab.address(of: c)
        #expect(lab.ping(from: a, to: target, within: 20), "A cannot reach C: \(lab.log(of: a))")
        let reply = NamespaceLab.run(["ip", "netns", "exec", a, "ping", "-6", "-c", "1", "-W", "2", target]).output
        #expect(reply.contains("ttl=61"), "hop limit 64, decremented at A, B and C: \(reply)")
    }

    @Test("diamond A–{B,C}–D: cutting the link of the selected path fails over and traffic resumes")
    func diamondFailover() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), c = try lab.host("c"), d = try lab.host("d")
        let (_, bFromA) = try lab.link(a, b)  // link 1: v1a in A
        let (_, cFromA) = try lab.link(a, c)  // link 2: v2a in A
        let (_, dFromB) = try lab.link(b, d)
        let (_, dFromC) = try lab.link(c, d)
        try lab.startNode(d)
        try lab.startNode(b, peers: [dFromB])
        try lab.startNode(c, peers: [dFromC])
        try lab.startNode(a, peers: [bFromA, cFromA])
        let target = try lab.address(of: d)
        #expect(lab.ping(from: a, to: target, within: 20), "A cannot reach D: \(lab.log(of: a))")

        // Which of A's links carries the traffic? Compare their transmit counters across pings.
        func txPackets(_ link: Int) -> Int {
            let out = NamespaceLab.run(["ip", "-n", a, "-s", "link", "show", "v\(link)a"]).output
            let lines = out.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let i = lines.firstIndex(where: { $0.hasPrefix("TX:") }), i + 1 < lines.count else { return 0 }
            return Int(lines[i + 1].split(separator: " ")[1]) ?? 0
        }
        let before = (txPackets(1), txPackets(2))
        NamespaceLab.run(["ip", "netns", "exec", a, "ping", "-6", "-c", "10", "-i", "0.05", "-W", "1", target])
        let used = txPackets(1) - before.0 >= txPackets(2) - before.1 ? 1 : 2
        lab.cut(link: used, in: a)
        // A notices the dead connection (TCP user timeout while pings are unanswered, or the
        // 43 s IHU deadline at worst) and moves to the other side.
        #expect(lab.ping(from: a, to: target, within: 75), "no failover after cutting link \(used): \(lab.log(of: a))")
    }

    @Test("a restarted node keeps its address (same key file) and is reachable again")
    func restart() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b")
        let (_, bAddr) = try lab.link(a, b)
        try lab.startNode(b)
        try lab.startNode(a, peers: [bAddr])
        let before = try lab.address(of: b)
        #expect(lab.ping(from: a, to: before, within: 20))
        lab.stopNode(b)
        #expect(!lab.log(of: b).isEmpty && lab.log(of: b).contains("node stopped"))
        #expect(!NamespaceLab.run(["ip", "-n", b, "link", "show", "mycelium"]).output.contains("mtu"), "TUN removed on stop")
        try lab.startNode(b)
        #expect(try lab.address(of: b) == before)
        #expect(lab.ping(from: a, to: before, within: 30), "A cannot reach B after its restart: \(lab.log(of: a))")
    }

    @Test("--firewall-mark: the rule and its unreachable table exist while the node runs, and go with it; the QUIC socket is marked")
    func firewallMark() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b")
        let (_, bAddr) = try lab.link(a, b)
        try lab.startNode(b)
        // A leftover rule from a crashed predecessor must be replaced, not duplicated.
        NamespaceLab.run(["ip", "-n", a, "-6", "rule", "add", "fwmark", "0x4d59", "lookup", "4243", "priority", "1000"])
        try lab.startNode(a, peers: [bAddr], environment: ["MYCELIUM_FIREWALL_MARK": "0x4d59"])
        let rules = NamespaceLab.run(["ip", "-n", a, "-6", "rule"]).output
        #expect(rules.components(separatedBy: "fwmark 0x4d59 lookup 4243").count == 2, "\(rules)")
        #expect(NamespaceLab.run(["ip", "-n", a, "-6", "route", "show", "table", "4243"]).output.contains("unreachable 400::/7"))
        // The QUIC socket is marked too.
        let udp = NamespaceLab.run(["ip", "netns", "exec", a, "ss", "-Hunle", "sport = :9651"]).output
        #expect(udp.contains("fwmark:0x4d59"), "QUIC socket: \(udp)")
        #expect(lab.ping(from: a, to: try lab.address(of: b), within: 20), "marked peer sockets still reach the underlay")
        // Marked traffic cannot enter the overlay.
        let marked = NamespaceLab.run(["ip", "netns", "exec", a, "ping", "-6", "-c", "1", "-W", "1", "-m", "0x4d59", try lab.address(of: b)])
        #expect(marked.status != 0)
        lab.stopNode(a)
        #expect(!NamespaceLab.run(["ip", "-n", a, "-6", "rule"]).output.contains("0x4d59"))
        #expect(!NamespaceLab.run(["ip", "-n", a, "-6", "route", "show", "table", "4243"]).output.contains("400::/7"))
    }

    @Test("bad peers: random bytes and a hijacked /64 disturb nobody")
    func badInput() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), m = try lab.host("m")
        let (_, bAddr) = try lab.link(a, b)
        let (_, aFromM) = try lab.link(m, a)
        try lab.startNode(b)
        try lab.startNode(a, peers: [bAddr])
        let target = try lab.address(of: b)
        #expect(lab.ping(from: a, to: target, within: 20))
        // M sends garbage, then a well-formed Update claiming B's /64 under M's own key.
        let subnet = target.split(separator: ":").prefix(4).joined(separator: ":") + "::/64"
        let forged = ForgedFrames.update(claiming: subnet)
        let script = """
            import socket, os
            s = socket.create_connection(("\(aFromM)", 9651)); s.sendall(os.urandom(4096)); s.close()
            s = socket.create_connection(("\(aFromM)", 9651)); s.sendall(bytes.fromhex("\(forged)"))
            import time; time.sleep(1); s.close()
            """
        NamespaceLab.run(["ip", "netns", "exec", m, "python3", "-c", script], timeout: 15)
        #expect(lab.ping(from: a, to: target, within: 10), "A lost B after the bad peers")
        #expect(lab.nodes[a]!.process.isRunning)
    }
}
