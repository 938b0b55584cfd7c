import Foundation
import MyceliumCore
import Testing

/// What a node costs when nothing happens (bench/idle.sh; not part of `make test`): a hub with
/// ten peers, each a real daemon in its own namespace, measured after it settles: RSS (and
/// how much of it is the binary and libraries, shared with every other process that maps
/// them), CPU over a quiet minute; then the memory per route once a peer has announced
/// 10 000 routes with valid owners. `MYCELIUM_LAB_BINARY` names the binary (bench/idle.sh
/// passes the shipped build). Prints `BENCH` lines.
@Suite(.serialized, .enabled(if: labAvailable && ProcessInfo.processInfo.environment["MYCELIUM_IDLE_BENCH"] == "1",
                             "bench/idle.sh runs it"))
struct IdleCostBench {
    static let peers = 10
    static let routes = 10_000
    static let quietSeconds = Int(ProcessInfo.processInfo.environment["MYCELIUM_IDLE_SECONDS"] ?? "") ?? 60

    /// (RSS, Pss, anonymous) KiB from /proc/PID/smaps_rollup.
    static func memory(_ lab: NamespaceLab, _ ns: String) -> (rss: Int, pss: Int, anon: Int) {
        guard let pid = lab.nodes[ns]?.process.processIdentifier,
              let text = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else { return (0, 0, 0) }
        func field(_ name: String) -> Int {
            guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(name + ":") }) else { return 0 }
            return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
        }
        return (field("Rss"), field("Pss"), field("Anonymous"))
    }

    @Test("idle hub with ten peers, then 10 000 routes")
    func idle() throws {
        let lab = try NamespaceLab()
        let hub = try lab.host("hub")
        var leaves: [String] = []
        for i in 0..<Self.peers {
            let leaf = try lab.host("l\(i)")
            let (_, hubAddress) = try lab.link(leaf, hub)
            leaves.append(leaf)
            try lab.startNode(leaf, peers: [hubAddress])
        }
        try lab.startNode(hub)
        let e = try lab.host("e")
        let (_, hubFromE) = try lab.link(e, hub)
        let lastLeaf = try lab.address(of: leaves.last!)
        try #require(lab.ping(from: hub, to: lastLeaf, within: 30), "hub cannot reach its peers")
        sleep(20)  // settle: connections, first Hellos and IHUs, route exchange

        let before = Self.memory(lab, hub)
        let cpu0 = HostilePeerBench.cpuSeconds(lab, hub)
        let t0 = Date()
        sleep(UInt32(Self.quietSeconds))
        let cpu = (HostilePeerBench.cpuSeconds(lab, hub) - cpu0) / Date().timeIntervalSince(t0) * 100
        let after = Self.memory(lab, hub)
        let leafRSS = leaves.map { Self.memory(lab, $0).rss }.reduce(0, +) / leaves.count
        print("BENCH idle hub, \(Self.peers) peers: rss_kib=\(after.rss) pss_kib=\(after.pss) anon_kib=\(after.anon) "
            + "rss_growth_kib=\(after.rss - before.rss) cpu_percent=\(String(format: "%.2f", cpu)) over \(Self.quietSeconds) s; "
            + "leaf (1 peer) mean rss_kib=\(leafRSS)")

        // 10 000 routes, each a distinct /64 announced with its owner's key (any 32 bytes are
        // a key to the router; the /64 is derived from it as on the real network).
        let peer = try HostilePeer(namespace: e, address: hubFromE)
        peer.drain()
        #expect(peer.send(peer.announce()))
        var updates: [Packet] = []
        for _ in 0..<Self.routes {
            let key = PublicKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) })!
            let id = RouterId(publicKey: key, random: UInt64.random(in: 0...RouterId.randomMask))
            updates.append(.control(.update(Update(interval: 30_000, seqno: SeqNo(1), metric: Metric(1), subnet: key.subnet, routerId: id))))
        }
        let withRoutesBefore = Self.memory(lab, hub)
        for chunk in stride(from: 0, to: updates.count, by: 500) {
            #expect(peer.send(Array(updates[chunk..<min(chunk + 500, updates.count)])))
        }
        var selected = 0
        for _ in 0..<60 {
            let out = NamespaceLab.run(["ip", "netns", "exec", hub, "python3", "-c",
                                        "import urllib.request,json;print(len(json.load(urllib.request.urlopen('http://127.0.0.1:8989/api/v1/admin/routes/selected'))))"]).output
            selected = Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
            if selected >= Self.routes { break }
            sleep(1)
        }
        sleep(5)
        let withRoutes = Self.memory(lab, hub)
        let perRoute = Double(withRoutes.anon - withRoutesBefore.anon) * 1024 / Double(max(1, selected))
        print("BENCH \(selected) routes: rss_kib=\(withRoutes.rss) anon_kib=\(withRoutes.anon) "
            + "anon_growth_kib=\(withRoutes.anon - withRoutesBefore.anon) bytes_per_route=\(Int(perRoute))")
        #expect(selected >= Self.routes, "only \(selected) routes selected")
    }
}
