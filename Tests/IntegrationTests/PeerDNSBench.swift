import Foundation
import Testing

/// Measures peer discovery through DNS (bench/peer-dns.sh; not part of `make test`): N nodes on
/// a routed underlay with dnsmasq serving the SRV records, no `--peers`, no LAN discovery. Prints
/// the time from the last node's start until every node has a route to every other node's /64,
/// a ping across, and the DNS queries per node per minute at steady state.
@Suite(.serialized, .enabled(if: labAvailable && ProcessInfo.processInfo.environment["MYCELIUM_PEER_DNS_BENCH"] == "1",
                             "bench/peer-dns.sh runs it"))
struct PeerDNSBench {
    static var sizes: [Int] {
        (ProcessInfo.processInfo.environment["MYCELIUM_PEER_DNS_NODES"] ?? "5 20").split(separator: " ").compactMap { Int($0) }
    }
    static var ttl: Int { Int(ProcessInfo.processInfo.environment["MYCELIUM_PEER_DNS_TTL"] ?? "30") ?? 30 }

    static func selectedRoutes(_ ns: String) -> Int {
        let out = NamespaceLab.run(["ip", "netns", "exec", ns, NamespaceLab.binary, "routes", "selected", "--json"]).output
        return out.components(separatedBy: "\"subnet\"").count - 1
    }

    @Test("time to a full mesh and DNS queries per node per minute", arguments: sizes)
    func mesh(nodes count: Int) throws {
        let env = try PeerDNSTests.RoutedLab(nodes: count)
        try env.serveDNS(listing: env.nodes, ttl: Self.ttl)
        for ns in env.nodes { try env.start(ns) }
        let lastStart = Date()
        var pending = Set(env.nodes)
        let deadline = Date().addingTimeInterval(120)
        while !pending.isEmpty, Date() < deadline {
            for ns in pending.sorted() where Self.selectedRoutes(ns) >= count - 1 { pending.remove(ns) }
        }
        let meshSeconds = Date().timeIntervalSince(lastStart)
        #expect(pending.isEmpty, "not meshed after 120 s: \(pending.sorted())")
        let pinged = env.lab.ping(from: env.nodes[0], to: try env.lab.address(of: env.nodes[count - 1]), within: 10)
        // Steady state: queries over one minute, from the log dnsmasq writes.
        let before = Self.queryCount(env)
        sleep(60)
        let perNodePerMinute = Double(Self.queryCount(env) - before) / Double(count)
        print("BENCH peer-dns nodes=\(count) ttl_s=\(Self.ttl) full_mesh_s=\(String(format: "%.1f", meshSeconds)) "
              + "ping_first_to_last=\(pinged) dns_queries_per_node_per_min=\(String(format: "%.1f", perNodePerMinute))")
    }

    static func queryCount(_ env: PeerDNSTests.RoutedLab) -> Int {
        let log = (try? String(contentsOfFile: env.queryLog, encoding: .utf8)) ?? ""
        return log.split(separator: "\n").filter { $0.contains(": query[") }.count
    }
}
