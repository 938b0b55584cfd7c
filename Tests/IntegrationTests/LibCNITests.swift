import Foundation
import MyceliumTesting
import Testing

/// Our plugin driven by libcni, the library containerd and CRI-O use (Debian's
/// golang-github-appc-cni-dev, through scripts/cni-driver): config injection, VERSION probe,
/// result cache, prevResult on CHECK and DEL, reverse DEL; alone, with Debian's reference
/// `portmap` and `tuning` chained after it, and chained itself after `ptp`.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct LibCNITests {
    static let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("scripts/cni-driver/main.go").path

    /// Builds the driver into `dir` (a few seconds; Go and libcni come from Debian).
    static func buildDriver(_ dir: String) throws -> String {
        let out = dir + "/cni-driver"
        let r = Shell.run(["env", "GO111MODULE=off", "GOPATH=/usr/share/gocode", "GOCACHE=\(dir)/gocache",
                           "go", "build", "-o", out, sources], timeout: 300)
        guard r.status == 0 else { throw LabError("cannot build the libcni driver (make test installs golang-go and golang-github-appc-cni-dev): \(r.output)") }
        return out
    }

    struct Runtime {
        let driver: String
        let pluginDir: String
        let cache: String

        @discardableResult
        func run(_ verb: String, _ conflist: String, id: String, netns: String) -> (status: Int32, output: String) {
            Shell.run(["env", "CNI_PATH=\(pluginDir):/usr/lib/cni", driver, verb, conflist, id, "/var/run/netns/\(netns)", "eth0", cache],
                      timeout: 60)
        }
    }

    static func setUp(_ lab: NamespaceLab) throws -> (Runtime, CNIAgentTests.Host, String) {
        let hostNS = try lab.host("h")
        let host = try CNIAgentTests.startHost(lab, hostNS)
        let pluginDir = lab.directory + "/bin"
        try FileManager.default.createDirectory(atPath: pluginDir, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: CNIAgentTests.plugin, toPath: pluginDir + "/mycelium-cni")
        return (Runtime(driver: try buildDriver(lab.directory), pluginDir: pluginDir, cache: lab.directory + "/cache"), host, hostNS)
    }

    static func write(_ lab: NamespaceLab, _ name: String, _ plugins: String) throws -> String {
        let path = "\(lab.directory)/\(name).conflist"
        try Data("{\"cniVersion\":\"1.0.0\",\"name\":\"\(name)\",\"plugins\":[\(plugins)]}".utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("alone and followed by portmap or tuning: VERSION probe, ADD, CHECK, DEL twice, through libcni", arguments: [
        ("alone", ""),
        ("portmap", ",{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true}}"),
        ("tuning", ",{\"type\":\"tuning\",\"sysctl\":{\"net.ipv6.conf.eth0.hop_limit\":\"33\"}}"),
    ])
    func primary(label: String, after: String) throws {
        let lab = try NamespaceLab()
        let (runtime, host, hostNS) = try Self.setUp(lab)
        let c = try lab.host("c")
        let conflist = try Self.write(lab, "myc-\(label)", "{\"type\":\"mycelium-cni\",\"socket\":\"\(host.socket)\"}" + after)
        #expect(runtime.run("validate", conflist, id: "v", netns: c).status == 0, "libcni's VERSION probe")
        let add = runtime.run("add", conflist, id: "lib-1", netns: c)
        #expect(add.status == 0, "\(add.output)")
        let address = CNIAgentTests.containerAddress(c)
        #expect(!address.isEmpty && add.output.contains(address), "\(add.output)")
        #expect(lab.ping(from: c, to: try lab.address(of: hostNS), within: 3))
        if label == "tuning" {
            #expect(NamespaceLab.run(["ip", "netns", "exec", c, "cat", "/proc/sys/net/ipv6/conf/eth0/hop_limit"]).output.hasPrefix("33"))
        }
        let check = runtime.run("check", conflist, id: "lib-1", netns: c)
        #expect(check.status == 0, "\(check.output)")
        #expect(runtime.run("del", conflist, id: "lib-1", netns: c).status == 0)
        #expect(runtime.run("del", conflist, id: "lib-1", netns: c).status == 0, "a second DEL")
        #expect(CNIAgentTests.hostVeths(hostNS).isEmpty)
        #expect(!NamespaceLab.run(["ip", "-n", c, "link"]).output.contains("eth0"))
    }

    @Test("install-cni --mode chained on a ptp network: the conflist it writes works through libcni")
    func installedChain() throws {
        let lab = try NamespaceLab()
        let (runtime, host, hostNS) = try Self.setUp(lab)
        let c = try lab.host("c")
        let conf = lab.directory + "/net.d"
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        try Data(("{\"cniVersion\":\"1.0.0\",\"name\":\"pods\",\"plugins\":[{\"type\":\"ptp\",\"ipam\":{\"type\":\"host-local\","
            + "\"subnet\":\"10.77.0.0/24\",\"dataDir\":\"\(lab.directory)/ipam\"}}]}").utf8).write(to: URL(fileURLWithPath: conf + "/10-pods.conflist"))
        let install = NamespaceLab.run([NamespaceLab.binary, "install-cni", "--mode", "chained", "--bin-dir", lab.directory + "/installed",
                                        "--conf-dir", conf, "--cni-socket", host.socket])
        #expect(install.status == 0, "\(install.output)")
        let conflist = conf + "/00-mycelium.conflist"
        let add = runtime.run("add", conflist, id: "lib-3", netns: c)
        #expect(add.status == 0, "\(add.output)")
        #expect(add.output.contains("10.77.0.") && add.output.contains("myc0"), "both networks in the result: \(add.output)")
        let links = NamespaceLab.run(["ip", "-n", c, "-o", "addr"]).output
        #expect(links.contains("eth0") && links.contains("10.77.0.") && links.contains("myc0"), "\(links)")
        #expect(runtime.run("del", conflist, id: "lib-3", netns: c).status == 0)
        #expect(CNIAgentTests.hostVeths(hostNS).isEmpty)
    }

    @Test("chained after ptp: eth0 keeps ptp's IPv4, myc0 gets the overlay address, the result carries both")
    func chainedAfterPTP() throws {
        let lab = try NamespaceLab()
        let (runtime, host, hostNS) = try Self.setUp(lab)
        let c = try lab.host("c")
        let ptp = "{\"type\":\"ptp\",\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"\(lab.directory)/host-local\",\"ranges\":[[{\"subnet\":\"10.99.0.0/24\"}]]}}"
        let conflist = try Self.write(lab, "chain", ptp + ",{\"type\":\"mycelium-cni\",\"socket\":\"\(host.socket)\"}")
        let add = runtime.run("add", conflist, id: "lib-2", netns: c)
        #expect(add.status == 0, "\(add.output)")
        #expect(add.output.contains("10.99.0.") && add.output.contains("\"myc0\""), "\(add.output)")
        let links = NamespaceLab.run(["ip", "-n", c, "-br", "addr"]).output
        #expect(links.contains("eth0") && links.contains("10.99.0.") && links.contains("myc0"), "\(links)")
        #expect(lab.ping(from: c, to: try lab.address(of: hostNS), within: 3), "overlay through myc0")
        // (ptp's own CHECK insists every IP of the result is on eth0, so CHECK is not run here.)
        #expect(runtime.run("del", conflist, id: "lib-2", netns: c).status == 0)
        #expect(CNIAgentTests.hostVeths(hostNS).isEmpty)
        #expect(!NamespaceLab.run(["ip", "-n", c, "link"]).output.contains("myc0"))
    }
}
