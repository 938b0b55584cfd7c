import Foundation
import MyceliumCore
import Testing

/// Sessions (docs/sessions.md) between real daemons in network namespaces: end to end through
/// a relay, a node that speaks only the static scheme as Rust does, and a replayed packet.
/// Every wait is bounded; no timing is asserted.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct SessionNamespaceTests {
    static let metricsPort = 9993
    static let metricsArguments = ["--metrics-api-address", "[::1]:\(metricsPort)"]

    static func eventually(tries: Int, _ condition: () -> Bool) -> Bool {
        for _ in 0..<tries {
            if condition() { return true }
            usleep(500_000)
        }
        return condition()
    }

    @Test("three of our nodes in a line: A and C (the latter requiring sessions) set up a session through B, which holds none")
    func endToEndThroughRelay() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), c = try lab.host("c")
        let (_, bFromA) = try lab.link(a, b)
        let (_, cFromB) = try lab.link(b, c)
        try lab.startNode(c, arguments: Self.metricsArguments + ["--require-sessions"])
        try lab.startNode(b, peers: [cFromB], arguments: Self.metricsArguments)
        try lab.startNode(a, peers: [bFromA], arguments: Self.metricsArguments)
        let cAddress = try lab.address(of: c), aAddress = try lab.address(of: a)
        // C refuses A's static first packet; the session is up for the next ones.
        try #require(lab.ping(from: a, to: cAddress, within: 20), "A cannot reach C: \(lab.log(of: a)) \(lab.log(of: c))")
        #expect(lab.ping(from: c, to: aAddress, within: 10))
        func m(_ ns: String, _ name: String) -> Double { lab.metrics(of: ns, port: Self.metricsPort)[name] ?? 0 }
        #expect(m(a, "mycelium_sessions_up") == 1 && m(c, "mycelium_sessions_up") == 1)
        #expect(m(a, "mycelium_session_handshakes{event=\"established\"}") >= 1)
        #expect(m(c, "mycelium_session_handshakes{event=\"established\"}") >= 1)
        #expect(m(b, "mycelium_sessions_up") == 0 && m(b, "mycelium_router_packets_routed{verdict=\"local\"}") == 0)
        // What an operator sees: `mycelium sessions list` on A shows C up.
        let listed = NamespaceLab.run(["ip", "netns", "exec", a, NamespaceLab.binary, "sessions", "list", "--json"])
        let entries = try JSONSerialization.jsonObject(with: Data(listed.output.utf8)) as? [[String: Any]] ?? []
        let toC = entries.first { $0["address"] as? String == cAddress }
        #expect(toC?["state"] as? String == "up" && toC?["capable"] as? Bool == true, "\(listed.output)")
        let table = NamespaceLab.run(["ip", "netns", "exec", c, NamespaceLab.binary, "sessions", "list"]).output
        #expect(table.contains(aAddress) && table.contains(" up "), "\(table)")
        // Ten more pings under the session, each delivered once.
        let delivered = m(c, "mycelium_router_packets_routed{verdict=\"local\"}")
        let r = NamespaceLab.run(["ip", "netns", "exec", a, "ping", "-6", "-c", "10", "-i", "0.2", "-W", "2", cAddress], timeout: 30)
        #expect(r.status == 0 && r.output.contains("10 received"), "\(r.output)")
        #expect(m(c, "mycelium_router_packets_routed{verdict=\"local\"}") - delivered == 10)
        #expect(m(c, "mycelium_datapath_dropped{reason=\"replay\"}") == 0)
        #expect(m(a, "mycelium_session_fallbacks") == 0)
    }

    @Test("a node that speaks only the static scheme (--sessions false, as Rust): pings both ways, the other side falls back")
    func rustLikePeer() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), r = try lab.host("r")
        let (_, rFromA) = try lab.link(a, r)
        try lab.startNode(r, arguments: Self.metricsArguments + ["--sessions", "false"])
        try lab.startNode(a, peers: [rFromA], arguments: Self.metricsArguments)
        let rAddress = try lab.address(of: r), aAddress = try lab.address(of: a)
        try #require(lab.ping(from: a, to: rAddress, within: 20), "A cannot reach R: \(lab.log(of: a))")
        #expect(lab.ping(from: r, to: aAddress, within: 10))
        func m(_ ns: String, _ name: String) -> Double { lab.metrics(of: ns, port: Self.metricsPort)[name] ?? 0 }
        // A tries three Inits (1 s, 2 s, 4 s apart), then stays static.
        #expect(Self.eventually(tries: 30) { m(a, "mycelium_session_fallbacks") >= 1 }, "\(lab.log(of: a))")
        #expect(m(r, "mycelium_datapath_dropped{reason=\"sessions_off\"}") >= 1)
        #expect(m(a, "mycelium_sessions_up") == 0)
        let p = NamespaceLab.run(["ip", "netns", "exec", a, "ping", "-6", "-c", "5", "-i", "0.2", "-W", "2", rAddress], timeout: 30)
        #expect(p.status == 0 && p.output.contains("5 received"), "\(p.output)")
        let q = NamespaceLab.run(["ip", "netns", "exec", r, "ping", "-6", "-c", "5", "-i", "0.2", "-W", "2", aAddress], timeout: 30)
        #expect(q.status == 0 && q.output.contains("5 received"), "\(q.output)")
    }

    @Test("a captured packet replayed by a peer is delivered once; the copies are dropped and counted")
    func replay() throws {
        let lab = try NamespaceLab()
        let v = try lab.host("v"), e = try lab.host("e")
        let (vFromE, _) = try lab.link(v, e)
        try lab.startNode(v, arguments: Self.metricsArguments)
        let victim = try lab.publicKey(of: v)
        let evil = try HostilePeer(namespace: e, address: vFromE)
        evil.drain()
        #expect(evil.send(evil.announce()))
        func m(_ name: String) -> Double { lab.metrics(of: v, port: Self.metricsPort)[name] ?? 0 }
        let local = "mycelium_router_packets_routed{verdict=\"local\"}"
        // V must learn E's route first; until then its packets wait or are dropped.
        #expect(Self.eventually(tries: 20) {
            evil.send([evil.dataPacket(to: victim)])
            return m(local) >= 1
        }, "\(lab.log(of: v))")
        usleep(500_000)
        let captured = evil.dataPacket(to: victim)
        let before = m(local), replaysBefore = m("mycelium_datapath_dropped{reason=\"replay\"}")
        #expect(evil.send([captured]))
        #expect(Self.eventually(tries: 10) { m(local) == before + 1 })
        #expect(evil.send([captured, captured, captured]))
        #expect(Self.eventually(tries: 10) { m("mycelium_datapath_dropped{reason=\"replay\"}") == replaysBefore + 3 })
        #expect(m(local) == before + 1)
        #expect(lab.nodes[v]!.process.isRunning)
    }
}
