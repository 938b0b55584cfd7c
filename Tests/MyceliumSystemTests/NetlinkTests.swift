import Foundation
import MyceliumCore
import MyceliumSystem
import MyceliumTesting
import Testing

func sh(_ args: String...) -> (status: Int32, output: String) { Shell.run(args) }
func run(_ args: [String]) -> (status: Int32, output: String) { Shell.run(args) }

/// A network namespace made for one test and removed after it.
final class TestNamespace {
    let name: String
    var path: String { "/var/run/netns/\(name)" }

    init() throws {
        name = "mycsys\(UInt32.random(in: 0...UInt32.max))"
        let r = run(["ip", "netns", "add", name])
        guard r.status == 0 else { throw SystemError("ip netns add: \(r.output)", errno: EPERM) }
    }

    deinit { _ = run(["ip", "netns", "del", name]) }

    func ip(_ args: String...) -> String { run(["ip", "-n", name] + args).output }
}

let isRoot = getuid() == 0 && FileManager.default.fileExists(atPath: "/dev/net/tun")

/// Declarative system tests: ask the netlink layer for a state, compare with what the kernel reports.
@Suite(.serialized, .enabled(if: isRoot, "needs root and /dev/net/tun (CI has both)"))
struct NetlinkTests {
    static let address = IPv6Address("520:c662:fd00:9e92:5d99:34ed:ab8:82ab")!
    static let rule = Netlink.MarkRule(mark: 0x4D59, table: 4243, priority: 1000)

    /// A TUN up in `ns` with MTU 1400 and our address /7, and a netlink socket opened there.
    static func overlayTun(in ns: TestNamespace) throws -> (tun: TunDevice, netlink: Netlink) {
        try NetworkNamespace.run(ns.path) { () throws -> (tun: TunDevice, netlink: Netlink) in
            let tun = try TunDevice(name: "myc%d")
            let nl = try Netlink()
            try nl.setLink(tun.name, up: true, mtu: 1400)
            try nl.addAddress(Self.address, prefixLength: 7, interface: try nl.interfaceIndex(tun.name))
            return (tun, nl)
        }
    }

    @Test("TUN up, MTU 1400, address /7, fwmark rule and unreachable table, all inside a namespace")
    func configureTun() throws {
        let ns = try TestNamespace()
        let (tun, netlink) = try NetworkNamespace.run(ns.path) { () throws -> (TunDevice, Netlink) in
            let tun = try TunDevice(name: "myc%d")
            let nl = try Netlink()
            try nl.setLink(tun.name, up: true, mtu: 1400)
            try nl.addAddress(Self.address, prefixLength: 7, interface: try nl.interfaceIndex(tun.name))
            try nl.addAddress(Self.address, prefixLength: 7, interface: try nl.interfaceIndex(tun.name))  // again: no error
            return (tun, nl)
        }
        #expect(tun.name == "myc0")
        let link = ns.ip("-6", "addr", "show", "dev", tun.name)
        #expect(link.contains("mtu 1400"), "\(link)")
        #expect(link.contains("UP"), "\(link)")
        #expect(link.contains("inet6 520:c662:fd00:9e92:5d99:34ed:ab8:82ab/7"), "\(link)")
        #expect(ns.ip("-6", "route").contains("400::/7 dev myc0"))
        // The socket opened inside stays in the namespace: use it from this thread.
        try netlink.replaceRule(Self.rule)
        try netlink.replaceRule(Self.rule)  // idempotent: replaced, not duplicated
        try netlink.replaceRoute(Subnet.overlay, .unreachable, table: Self.rule.table)
        let rules = ns.ip("-6", "rule")
        #expect(rules.components(separatedBy: "fwmark 0x4d59 lookup 4243").count == 2, "\(rules)")
        #expect(ns.ip("-6", "route", "show", "table", "4243").contains("unreachable 400::/7"))
        // Nothing leaked into the host namespace.
        #expect(sh("ip", "link", "show", "myc0").status != 0)
        #expect(!sh("ip", "-6", "rule").output.contains("0x4d59"))
        // Removal, twice: the second is a no-op.
        try netlink.deleteRule(Self.rule)
        try netlink.deleteRule(Self.rule)
        try netlink.deleteRoute(Subnet.overlay, .unreachable, table: Self.rule.table)
        try netlink.deleteRoute(Subnet.overlay, .unreachable, table: Self.rule.table)
        #expect(!ns.ip("-6", "rule").contains("0x4d59"))
        #expect(!ns.ip("-6", "route", "show", "table", "4243").contains("400::/7"))
        withExtendedLifetime(tun) {}
    }

    @Test("packets the kernel routes into the TUN can be read, and the device goes with its fd")
    func readPackets() throws {
        let ns = try TestNamespace()
        var tun: TunDevice? = try Self.overlayTun(in: ns).tun
        var buffer = [UInt8](repeating: 0, count: 2000)
        // A ping to another overlay address goes into the TUN (the /7 prefix route). The kernel
        // also sends its own traffic there (MLD reports, router solicitations): skip those.
        let target = IPv6Address("52d:dc0:ab0c:851a::1")!
        let ping = Process()
        ping.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        ping.arguments = ["ip", "netns", "exec", ns.name, "ping", "-6", "-c", "1", "-W", "1", target.description]
        ping.standardOutput = FileHandle.nullDevice
        ping.standardError = FileHandle.nullDevice
        try ping.run()
        var echo: IPv6Header?
        for _ in 0..<200 where echo == nil {  // at most about 2 s
            guard let n = try buffer.withUnsafeMutableBytes({ try tun!.read(into: $0) }) else {
                usleep(10_000)
                continue
            }
            if let h = IPv6Header(buffer[..<n]), h.destination == target { echo = h }
        }
        ping.waitUntilExit()
        let header = try #require(echo, "the ping never reached the TUN")
        #expect(header.source == Self.address)
        #expect(header.nextHeader == 58)
        tun = nil
        #expect(!ns.ip("link").contains("myc0"))
    }

    @Test("a TUN nobody reads drops in the kernel once its queue is full; transmitDrops reports what ip does")
    func transmitDrops() throws {
        let ns = try TestNamespace()
        let (tun, netlink) = try Self.overlayTun(in: ns)
        #expect(try netlink.transmitDrops(of: tun.name) == 0)
        // 700 datagrams into the overlay prefix: the TUN's queue holds 500 (txqueuelen), nobody reads.
        let send = run(["ip", "netns", "exec", ns.name, "python3", "-c", """
            import socket
            s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            for _ in range(700):
                try: s.sendto(b"x" * 100, ("52d:dc0:ab0c:851a::1", 9))
                except OSError: pass
            """])
        #expect(send.status == 0, "\(send.output)")
        let drops = try netlink.transmitDrops(of: tun.name)
        #expect(drops >= 100)
        let json = ns.ip("-j", "-s", "link", "show", "dev", tun.name)
        let links = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
        let stats = try #require(links.first?["stats64"] as? [String: Any])
        let tx = try #require(stats["tx"] as? [String: Any])
        #expect((tx["dropped"] as? Int).map(UInt64.init) == drops, "\(json)")
        #expect(throws: SystemError.self) { try netlink.transmitDrops(of: "no-such-link0") }
        withExtendedLifetime(tun) {}
    }

    @Test("errors name the operation: a missing link, a bad namespace")
    func errors() throws {
        let nl = try Netlink()
        #expect(throws: SystemError.self) { try nl.interfaceIndex("no-such-link0") }
        do {
            _ = try NetworkNamespace.run("/var/run/netns/does-not-exist") { 1 }
            Issue.record("entering a missing namespace must fail")
        } catch let error as SystemError {
            #expect(error.description.contains("open namespace"))
        }
    }
}
