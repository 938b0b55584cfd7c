import Foundation
import Testing

/// LAN discovery and boot order: nodes started while their link-local addresses are still
/// tentative (duplicate address detection running) announce themselves as soon as DAD ends,
/// following netlink address changes, instead of at the next beacon a minute later.
@Suite("LAN discovery and boot order", .serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct LANBootOrderTests {
    @Test("two nodes started before their LAN ports finish DAD find each other well before the next beacon")
    func tentativeAtStart() throws {
        let lab = try NamespaceLab()
        let hosts = try ["a", "b"].map { try lab.host($0) }
        // DAD on for interfaces created from now on: 4 probes, 1 s apart → ~4 s tentative.
        for ns in hosts {
            NamespaceLab.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=1",
                              "net.ipv6.conf.default.dad_transmits=4", "net.ipv6.neigh.default.retrans_time_ms=1000"])
        }
        try lab.lan(hosts)
        for ns in hosts { try lab.startNode(ns, discovery: true) }
        let addresses = NamespaceLab.run(["ip", "-n", hosts[0], "-6", "addr", "show", "dev", "lan0", "scope", "link"]).output
        #expect(addresses.contains("tentative"), "the link-local address was usable at start already: \(addresses)")
        // The periodic beacon comes after 60 s; following the address change takes DAD's ~4 s.
        #expect(lab.ping(from: hosts[0], to: try lab.address(of: hosts[1]), within: 25), "\(lab.log(of: hosts[0]))")
        let metrics = NamespaceLab.run(["ip", "netns", "exec", hosts[0], NamespaceLab.binary, "peers", "list", "--json"]).output
        #expect(metrics.contains("linkLocalDiscovery") || metrics.contains("inbound"), "\(metrics)")
    }
}
