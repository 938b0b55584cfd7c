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
        let firstStart = Date()
        for ns in env.nodes { try env.start(ns, arguments: ["--metrics-api-address", "[::1]:\(Self.metricsPort)"]) }
        let lastStart = Date()
        var pending = Set(env.nodes)
        let deadline = Date().addingTimeInterval(120)
        while !pending.isEmpty, Date() < deadline {
            for ns in pending.sorted() where Self.selectedRoutes(ns) >= count - 1 { pending.remove(ns) }
        }
        let meshSeconds = Date().timeIntervalSince(lastStart), fromFirst = Date().timeIntervalSince(firstStart)
        #expect(pending.isEmpty, "not meshed after 120 s: \(pending.sorted())")
        let pinged = env.lab.ping(from: env.nodes[0], to: try env.lab.address(of: env.nodes[count - 1]), within: 10)
        // Steady state over one minute: lookups as each node counts them, and the queries dnsmasq
        // answered (one SRV query per lookup, plus address queries for targets whose glue did
        // not fit the 1200-byte EDNS0 answer).
        let before = (Self.lookups(env), Self.queryCount(env), Self.lookups(env, result: "failed"), Self.queryCount(env, type: "SRV"))
        sleep(60)
        let lookups = Double(Self.lookups(env) - before.0) / Double(count)
        let queries = Double(Self.queryCount(env) - before.1) / Double(count)
        let srvQueries = Double(Self.queryCount(env, type: "SRV") - before.3) / Double(count)
        let failed = Self.lookups(env, result: "failed") - before.2
        print("BENCH peer-dns nodes=\(count) ttl_s=\(Self.ttl) full_mesh_after_last_start_s=\(String(format: "%.1f", meshSeconds)) "
              + "full_mesh_after_first_start_s=\(String(format: "%.1f", fromFirst)) ping_first_to_last=\(pinged) "
              + "failed_lookups=\(failed) lookups_per_node_per_min=\(String(format: "%.1f", lookups)) dns_queries_per_node_per_min=\(String(format: "%.1f", queries)) "
              + "of_which_srv=\(String(format: "%.1f", srvQueries))")
    }

    static let metricsPort = 9099

    static func lookups(_ env: PeerDNSTests.RoutedLab, result: String? = nil) -> Int {
        env.nodes.reduce(0) { sum, ns in
            sum + Int(env.lab.metrics(of: ns, port: Self.metricsPort).filter {
                $0.key.hasPrefix("mycelium_peer_dns_lookups") && (result == nil || $0.key.contains("\"\(result!)\""))
            }.values.reduce(0, +))
        }
    }

    /// Queries dnsmasq logged (of one type, or all). The rest of the SRV lookups' queries ask for
    /// the addresses of targets whose glue did not fit the answer.
    static func queryCount(_ env: PeerDNSTests.RoutedLab, type: String? = nil) -> Int {
        let log = (try? String(contentsOfFile: env.queryLog, encoding: .utf8)) ?? ""
        return log.split(separator: "\n").filter { $0.contains(": query[" + (type.map { $0 + "]" } ?? "")) }.count
    }
}
