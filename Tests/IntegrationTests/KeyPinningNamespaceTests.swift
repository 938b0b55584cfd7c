import Foundation
import Testing

/// Pinned peer keys (`?key=`, docs/security.md) with the real binary in namespaces.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct KeyPinningNamespaceTests {
    @Test("B pins A's key over QUIC and TCP and reaches A; C pins another key for A and never uses the link, saying why")
    func pinned() throws {
        let lab = try NamespaceLab()
        let a = try lab.host("a"), b = try lab.host("b"), c = try lab.host("c")
        let (_, aFromB) = try lab.link(b, a)
        let (_, aFromC) = try lab.link(c, a)
        try lab.startNode(a)
        let keyA = try lab.publicKey(of: a).hex
        try lab.startNode(b, arguments: ["--peers", "quic://[\(aFromB)]:9651?key=\(keyA)", "tcp://[\(aFromB)]:9651?key=\(keyA)"])
        let keyB = try lab.publicKey(of: b).hex
        try lab.startNode(c, arguments: ["--peers", "tcp://[\(aFromC)]:9651?key=\(keyB)"])
        let target = try lab.address(of: a)
        #expect(lab.ping(from: b, to: target, within: 20), "B cannot reach A: \(lab.log(of: b))")
        let peers = NamespaceLab.run(["ip", "netns", "exec", b, NamespaceLab.binary, "peers", "list", "--json"]).output
        #expect(peers.components(separatedBy: "\"pinnedKey\": \"\(keyA)\"").count == 3 && !peers.contains("\"dead\""), "\(peers)")
        let table = NamespaceLab.run(["ip", "netns", "exec", b, NamespaceLab.binary, "peers", "list"]).output
        #expect(table.contains("Pinned key") && table.contains(String(keyA.prefix(16))), "\(table)")

        #expect(!lab.ping(from: c, to: target, within: 4), "C reached A through a peer that holds another key")
        #expect(lab.log(of: c).contains("did not prove its pinned key: the peer answered for key \(keyA)"), "\(lab.log(of: c))")
        let cPeers = NamespaceLab.run(["ip", "netns", "exec", c, NamespaceLab.binary, "peers", "list", "--json"]).output
        #expect(!cPeers.contains("\"alive\""), "\(cPeers)")
    }
}
