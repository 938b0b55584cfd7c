import Foundation
import Testing

/// Private networks and LAN discovery with the real binary in namespaces.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct TransportTests {
    /// The peers a node's API lists, through the CLI inside its namespace.
    static func peers(_ lab: NamespaceLab, _ ns: String) -> String {
        NamespaceLab.run(["ip", "netns", "exec", ns, NamespaceLab.binary, "peers", "list", "--json"]).output
    }

    static func writeKey(_ lab: NamespaceLab, _ name: String, byte: UInt8) throws -> String {
        let path = "\(lab.directory)/\(name)"
        try Data(repeating: byte, count: 32).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("two nodes of a private network ping over TLS; a node with another key cannot join")
    func privateNetwork() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), c = try lab.host("c")
        let (_, bFromA) = try lab.link(a, b)
        let (bFromC, _) = try lab.link(b, c)
        let key = try Self.writeKey(lab, "network.key", byte: 0x42)
        let otherKey = try Self.writeKey(lab, "other.key", byte: 0x43)
        // B through the environment, A through flags; C dials B with the wrong key.
        try lab.startNode(b, environment: ["MYCELIUM_NETWORK_NAME": "lab-net", "MYCELIUM_NETWORK_KEY_FILE": key])
        try lab.startNode(a, peers: [bFromA], arguments: ["--network-name", "lab-net", "--network-key-file", key])
        try lab.startNode(c, peers: [bFromC], arguments: ["--network-name", "lab-net", "--network-key-file", otherKey])
        #expect(lab.ping(from: a, to: try lab.address(of: b), within: 20), "A cannot reach B: \(lab.log(of: a))")
        #expect(Self.peers(lab, a).contains("\"connectionState\": \"alive\""), "\(Self.peers(lab, a))")

        #expect(!lab.ping(from: c, to: try lab.address(of: b), within: 3), "C (wrong key) reached B")
        #expect(!lab.ping(from: a, to: try lab.address(of: c), within: 2), "A reached C")
        #expect(lab.log(of: b).contains("TLS handshake refused"), "B logs the refused handshake")
        #expect(lab.log(of: c).contains("TLS handshake refused"), "C logs the refused handshake")
        #expect(!Self.peers(lab, c).contains("\"alive\""), "\(Self.peers(lab, c))")
    }

    @Test("a private network needs both --network-name and --network-key-file")
    func privateNetworkOptions() throws {
        let lab = try NamespaceLab()
        let key = try Self.writeKey(lab, "network.key", byte: 1)
        let cases: [([String], String)] = [
            (["--network-name", "lab-net"], "--network-key-file"),
            (["--network-key-file", key], "--network-name"),
            (["--network-name", "x", "--network-key-file", key], "--network-name"),
            (["--network-name", "lab-net", "--network-key-file", lab.directory + "/missing"], "--network-key-file"),
            (["--peers", "tls://[::1]:9651"], "--peers"),
        ]
        for (arguments, option) in cases {
            let r = NamespaceLab.run([NamespaceLab.binary, "show-config"] + arguments)
            #expect(r.status != 0 && r.output.contains("invalid value for \(option)"), "\(arguments): \(r.output)")
        }
    }

    @Test("three nodes on one LAN segment with no --peers find each other and ping over the overlay")
    func discovery() throws {
        let lab = try NamespaceLab()
        let hosts = try ["a", "b", "c"].map { try lab.host($0) }
        try lab.lan(hosts)
        for ns in hosts { try lab.startNode(ns, discovery: true) }
        let (a, b, c) = (hosts[0], hosts[1], hosts[2])
        #expect(lab.ping(from: a, to: try lab.address(of: c), within: 20), "A cannot reach C: \(lab.log(of: a))")
        #expect(lab.ping(from: c, to: try lab.address(of: b), within: 20), "C cannot reach B: \(lab.log(of: c))")
        #expect(lab.log(of: a).contains("peer discovered on the LAN"), "\(lab.log(of: a))")
        #expect(Self.peers(lab, a).contains("linkLocalDiscovery") || Self.peers(lab, a).contains("inbound"), "\(Self.peers(lab, a))")
    }

    @Test("private nodes found by discovery are dialled with TLS; an outsider on the LAN is not let in")
    func discoveryPrivate() throws {
        let lab = try NamespaceLab()
        let hosts = try ["a", "b", "c"].map { try lab.host($0) }
        try lab.lan(hosts)
        let key = try Self.writeKey(lab, "network.key", byte: 7)
        let otherKey = try Self.writeKey(lab, "other.key", byte: 8)
        try lab.startNode(hosts[0], arguments: ["--network-name", "lan-net", "--network-key-file", key], discovery: true)
        try lab.startNode(hosts[2], arguments: ["--network-name", "lan-net", "--network-key-file", otherKey], discovery: true)
        try lab.startNode(hosts[1], arguments: ["--network-name", "lan-net", "--network-key-file", key], discovery: true)
        #expect(lab.ping(from: hosts[1], to: try lab.address(of: hosts[0]), within: 20), "\(lab.log(of: hosts[1]))")
        // A heard B's beacon (B started last) and dialled it over TLS at its link-local address.
        let listed = Self.peers(lab, hosts[0])
        #expect(listed.contains("\"type\": \"linkLocalDiscovery\"") && listed.contains("\"proto\": \"tls\"")
                    && listed.contains("\"socket\": \"[fe80::"), "\(listed)")
        #expect(!lab.ping(from: hosts[2], to: try lab.address(of: hosts[0]), within: 3), "the outsider reached A")
    }

    @Test("with discovery disabled, nodes on one LAN segment do not find each other")
    func discoveryDisabled() throws {
        let lab = try NamespaceLab()
        let hosts = try ["a", "b"].map { try lab.host($0) }
        try lab.lan(hosts)
        try lab.startNode(hosts[0], arguments: ["--disable-peer-discovery"], discovery: true)
        try lab.startNode(hosts[1], environment: ["MYCELIUM_DISABLE_PEER_DISCOVERY": "true"], discovery: true)
        #expect(!lab.ping(from: hosts[1], to: try lab.address(of: hosts[0]), within: 5))
        #expect(Self.peers(lab, hosts[0]).trimmingCharacters(in: .whitespacesAndNewlines) == "[]", "\(Self.peers(lab, hosts[0]))")
        #expect(!lab.log(of: hosts[0]).contains("LAN discovery on"))
    }
}
