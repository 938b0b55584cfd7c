import Foundation
import Testing

/// Peers found through DNS (`--peer-dns`), with a real DNS server (dnsmasq) serving SRV and
/// AAAA records: nodes on a routed underlay (each on its own /64 behind a router namespace, no
/// LAN in common, no LAN discovery, no `--peers`) find each other through it, follow records
/// added and removed, and keep running while the resolver is gone.
@Suite("Peers through DNS", .serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct PeerDNSTests {
    /// A router namespace with one routed link per node; dnsmasq runs in the router.
    final class RoutedLab {
        let lab: NamespaceLab
        let router: String
        var nodes: [String] = []
        /// Each node's underlay address and the router's address on its link (its resolver).
        var underlay: [String: (node: String, gateway: String)] = [:]
        let queryLog: String

        init(nodes count: Int) throws {
            lab = try NamespaceLab()
            router = try lab.host("r")
            queryLog = lab.directory + "/dnsmasq.log"
            NamespaceLab.run(["ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"])
            for i in 1...count {
                let ns = try lab.host("n\(i)")
                let (gateway, address) = try lab.link(router, ns)
                NamespaceLab.run(["ip", "-n", ns, "-6", "route", "add", "default", "via", gateway])
                // `ip netns exec` mounts /etc/netns/<ns>/resolv.conf over /etc/resolv.conf.
                try FileManager.default.createDirectory(atPath: "/etc/netns/\(ns)", withIntermediateDirectories: true)
                try "nameserver \(gateway)\noptions timeout:1 attempts:1\n".write(toFile: "/etc/netns/\(ns)/resolv.conf", atomically: true, encoding: .utf8)
                nodes.append(ns)
                underlay[ns] = (address, gateway)
            }
        }

        deinit {
            stopDNS()
            for ns in nodes { try? FileManager.default.removeItem(atPath: "/etc/netns/\(ns)") }
        }

        /// (Re)starts dnsmasq serving `_mycelium._tcp.peers.lab` SRV records (with AAAA records
        /// for their targets) for `listed`, and AAAA records of `plain.lab` for them too.
        func serveDNS(listing listed: [String], ttl: Int = 1) throws {
            stopDNS()
            try? FileManager.default.removeItem(atPath: queryLog)
            // dnsmasq daemonizes (it is not our child) and writes its pid file once it listens.
            var arguments = ["ip", "netns", "exec", router, "dnsmasq", "--conf-file=/dev/null", "--no-resolv",
                             "--no-hosts", "--user=root", "--pid-file=\(pidFile)", "--local-ttl=\(ttl)",
                             "--log-queries", "--log-facility=\(queryLog)", "--local=/lab/"]
            for ns in listed {
                let name = "\(ns).lab", address = underlay[ns]!.node
                arguments.append("--host-record=\(name),\(address)")
                arguments.append("--srv-host=_mycelium._tcp.peers.lab,\(name),9651,0,100")
            }
            let r = NamespaceLab.run(arguments)
            guard r.status == 0, dnsmasqPid != nil else { throw LabError("dnsmasq did not start: \(r.output)") }
        }

        var pidFile: String { lab.directory + "/dnsmasq.pid" }
        var dnsmasqPid: Int32? {
            (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }

        func stopDNS() {
            guard let pid = dnsmasqPid else { return }
            kill(pid, SIGTERM)
            for _ in 0..<50 where kill(pid, 0) == 0 { usleep(100_000) }
            if kill(pid, 0) == 0 { kill(pid, SIGKILL) }
            try? FileManager.default.removeItem(atPath: pidFile)
        }

        func start(_ ns: String, peerDNS: String? = "peers.lab", arguments: [String] = []) throws {
            try lab.startNode(ns, arguments: (peerDNS.map { ["--peer-dns", $0] } ?? []) + arguments)
        }

        /// `peers list --json` of a node.
        func peers(_ ns: String) -> String {
            NamespaceLab.run(["ip", "netns", "exec", ns, NamespaceLab.binary, "peers", "list", "--json"]).output
        }

        /// Waits (bounded) until `condition` holds; false if it never did.
        func eventually(within seconds: Int, _ condition: () -> Bool) -> Bool {
            for _ in 0..<(seconds * 5) {
                if condition() { return true }
                usleep(200_000)
            }
            return condition()
        }
    }

    @Test("five nodes on a routed underlay mesh through SRV records; records added and removed are followed; a dead resolver stalls nothing")
    func srvMesh() throws {
        let env = try RoutedLab(nodes: 5)
        let (n1, n2, n3, n4, n5) = (env.nodes[0], env.nodes[1], env.nodes[2], env.nodes[3], env.nodes[4])
        try env.serveDNS(listing: [n1, n2, n3, n4])
        // n5 does not look peers up: it is only found once DNS lists it.
        for ns in [n1, n2, n3, n4] { try env.start(ns) }
        try env.start(n5, peerDNS: nil)
        for ns in [n2, n3, n4] {
            #expect(env.lab.ping(from: n1, to: try env.lab.address(of: ns), within: 30), "n1 cannot reach \(ns): \(env.lab.log(of: n1))")
        }
        #expect(env.lab.ping(from: n4, to: try env.lab.address(of: n2), within: 10))
        #expect(env.peers(n1).contains("\"type\": \"dnsDiscovery\""), "\(env.peers(n1))")
        #expect(!env.lab.ping(from: n1, to: try env.lab.address(of: n5), within: 2), "n5 is in no DNS record yet")

        // Added to DNS: dialled at the next lookup (TTL 1 s → every 5 s).
        try env.serveDNS(listing: [n1, n2, n3, n4, n5])
        #expect(env.lab.ping(from: n5, to: try env.lab.address(of: n3), within: 30), "n5 was not dialled: \(env.lab.log(of: n3))")
        #expect(env.lab.ping(from: n1, to: try env.lab.address(of: n5), within: 10))

        // Removed from DNS: forgotten after two answers without it (n4 still dials others itself,
        // so only the DNS-found entries for it go).
        try env.serveDNS(listing: [n1, n2, n3, n5])
        let n4Endpoint = "[\(env.underlay[n4]!.node)]:9651"
        #expect(Self.dnsEntries(env.peers(n1)).contains(n4Endpoint), "\(env.peers(n1))")
        #expect(env.eventually(within: 30) { !Self.dnsEntries(env.peers(n1)).contains(n4Endpoint) }, "n4 was not forgotten: \(env.peers(n1))")
        #expect(env.lab.log(of: n1).contains("forgetting peer no longer in DNS"), "\(env.lab.log(of: n1))")

        // The resolver dies: lookups fail and are retried, the node goes on.
        env.stopDNS()
        #expect(env.eventually(within: 30) { env.lab.log(of: n2).contains("peer DNS lookup failed") }, "\(env.lab.log(of: n2))")
        #expect(env.lab.ping(from: n2, to: try env.lab.address(of: n3), within: 10))
        #expect(env.peers(n2).contains("\"connectionState\": \"alive\""), "the API answers and peers stay up: \(env.peers(n2))")
        // Back: asked again (the back-off is at most 60 s).
        try env.serveDNS(listing: [n1, n2, n3, n5])
        #expect(env.eventually(within: 75) { Self.queries(env, from: env.underlay[n2]!.node) > 0 }, "n2 never asked again")
    }

    @Test("without SRV records, the A/AAAA records of the name are dialled on the TCP listen port")
    func addressRecords() throws {
        let env = try RoutedLab(nodes: 2)
        try env.serveDNS(listing: [env.nodes[0], env.nodes[1]])
        // n<i>.lab has an AAAA record and no SRV records: n2 dials n1 by it.
        try env.start(env.nodes[0], peerDNS: nil)
        try env.start(env.nodes[1], peerDNS: "\(env.nodes[0]).lab")
        #expect(env.lab.ping(from: env.nodes[1], to: try env.lab.address(of: env.nodes[0]), within: 30), "\(env.lab.log(of: env.nodes[1]))")
        #expect(Self.dnsEntries(env.peers(env.nodes[1])).contains("[\(env.underlay[env.nodes[0]]!.node)]:9651"), "\(env.peers(env.nodes[1]))")
    }

    @Test("in a private network, peers found through DNS are dialled with TLS and mesh")
    func privateNetwork() throws {
        let env = try RoutedLab(nodes: 3)
        try env.serveDNS(listing: env.nodes)
        let key = try TransportTests.writeKey(env.lab, "network.key", byte: 5)
        for ns in env.nodes { try env.start(ns, arguments: ["--network-name", "dns-net", "--network-key-file", key]) }
        #expect(env.lab.ping(from: env.nodes[0], to: try env.lab.address(of: env.nodes[2]), within: 30), "\(env.lab.log(of: env.nodes[0]))")
        let listed = env.peers(env.nodes[0])
        #expect(listed.contains("\"type\": \"dnsDiscovery\"") && listed.contains("\"proto\": \"tls\""), "\(listed)")
    }

    @Test("a bad --peer-dns name fails at start with one line naming the option")
    func badName() {
        for value in ["", "a..b", "bad name", String(repeating: "x", count: 64) + ".lab"] {
            let r = NamespaceLab.run([NamespaceLab.binary, "show-config", "--peer-dns", value])
            #expect(r.status != 0 && r.output.contains("invalid value for --peer-dns (MYCELIUM_PEER_DNS)"), "\(value): \(r.output)")
        }
        let r = NamespaceLab.run(["env", "MYCELIUM_PEER_DNS=ok.lab,also.ok", NamespaceLab.binary, "show-config"])
        #expect(r.status == 0 && r.output.contains("ok.lab") && r.output.contains("also.ok"), "\(r.output)")
    }

    /// The endpoints of the `dnsDiscovery` entries of a `peers list --json`.
    static func dnsEntries(_ json: String) -> [String] {
        guard let list = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]] else { return [] }
        return list.compactMap { peer in
            guard peer["type"] as? String == "dnsDiscovery", let endpoint = peer["endpoint"] as? [String: Any],
                  let addr = endpoint["addr"] as? [String: Any] else { return nil }
            return addr["socket"] as? String
        }
    }

    /// Queries dnsmasq logged from `address`.
    static func queries(_ env: RoutedLab, from address: String) -> Int {
        let log = (try? String(contentsOfFile: env.queryLog, encoding: .utf8)) ?? ""
        return log.split(separator: "\n").filter { $0.contains("query[") && $0.contains("from \(address)") }.count
    }
}
