import Foundation
import MyceliumTesting
import Testing

/// The CNI plugin binary exec'd exactly as a runtime does (environment, config on stdin),
/// against the agent of a real node in a namespace; containers are namespaces.
@Suite(.serialized, .enabled(if: labAvailable, "needs root, network namespaces and /dev/net/tun (CI has them)"))
struct CNIAgentTests {
    static let plugin = Shell.product("mycelium-cni")

    struct Host {
        let namespace: String
        let socket: String
        let state: String
    }

    /// A node with its CNI agent in `ns`.
    static func startHost(_ lab: NamespaceLab, _ ns: String, peers: [String] = []) throws -> Host {
        let host = Host(namespace: ns, socket: "\(lab.directory)/\(ns).sock", state: "\(lab.directory)/\(ns)-state")
        try lab.startNode(ns, peers: peers, arguments: ["--cni", "--cni-socket", host.socket, "--state-dir", host.state])
        let deadline = Date().addingTimeInterval(10)
        while !lab.log(of: ns).contains("CNI agent ready"), Date() < deadline { usleep(20_000) }
        return host
    }

    /// Runs the plugin: (exit status, stdout, stderr).
    @discardableResult
    static func cni(_ command: String, _ host: Host, container: String?, id: String, ifname: String = "eth0",
                    version: String = "1.0.0", extra: String = "", netnsPath: String? = nil) throws -> (Int32, String, String) {
        var env = ["CNI_COMMAND": command, "CNI_CONTAINERID": id, "CNI_IFNAME": ifname, "CNI_PATH": "/opt/cni/bin"]
        if let container { env["CNI_NETNS"] = netnsPath ?? "/var/run/netns/\(container)" }
        let config = "{\"cniVersion\":\"\(version)\",\"name\":\"mycelium\",\"type\":\"mycelium-cni\",\"socket\":\"\(host.socket)\"\(extra)}"
        let r = try Shell.exec(plugin, environment: env, stdin: Array(config.utf8))
        return (r.status, r.stdout, r.stderr)
    }

    static func containerAddress(_ container: String) -> String {
        let out = NamespaceLab.run(["ip", "-n", container, "-6", "-o", "addr", "show", "scope", "global"]).output
        return out.split(separator: " ").first { $0.contains("/128") }.map { String($0.split(separator: "/")[0]) } ?? ""
    }

    /// Host-side veths of the agent (`myc` + 8 hex digits) in `ns`; the TUN (`mycelium`) is not one.
    static func hostVeths(_ ns: String) -> [String] {
        NamespaceLab.run(["ip", "-n", ns, "-o", "link"]).output.split(separator: "\n").compactMap { line in
            let parts = line.split(separator: " ")
            guard parts.count > 1 else { return nil }
            let name = String(parts[1].split(separator: "@")[0].split(separator: ":")[0])
            return name.count == 11 && name.hasPrefix("myc") && name.dropFirst(3).allSatisfy(\.isHexDigit) ? name : nil
        }
    }

    static func code(_ stdout: String) -> Int? {
        (try? JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])?["code"] as? Int
    }

    @Test("ADD, CHECK, DEL twice, DEL without a netns; ADD twice is an error; STATUS; a container reaches its node")
    func lifecycle() throws {
        let lab = try NamespaceLab()
        let hostNS = try lab.host("h")
        let h = try Self.startHost(lab, hostNS)
        let c = try lab.host("c")
        let (status, out, err) = try Self.cni("ADD", h, container: c, id: "ctr-a")
        #expect(status == 0, "\(out) \(err)")
        let result = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        let ip = ((result?["ips"] as? [[String: Any]])?.first?["address"] as? String) ?? ""
        #expect(ip.hasSuffix("/128") && ip.hasPrefix(Self.containerAddress(c)), "\(out)")
        let node = try lab.address(of: hostNS)
        #expect(lab.ping(from: c, to: node, within: 3), "the container reaches its node's address")

        let again = try Self.cni("ADD", h, container: c, id: "ctr-a")
        #expect(again.0 != 0 && Self.code(again.1) == 100, "\(again.1)")
        #expect(try Self.cni("CHECK", h, container: c, id: "ctr-a").0 == 0)
        #expect(try Self.cni("STATUS", h, container: nil, id: "x", version: "1.1.0").0 == 0)
        #expect(try Self.cni("DEL", h, container: c, id: "ctr-a").0 == 0)
        #expect(try Self.cni("DEL", h, container: c, id: "ctr-a").0 == 0, "DEL is idempotent")
        #expect(try Self.cni("DEL", h, container: nil, id: "ctr-a").0 == 0, "DEL without a netns")
        let check = try Self.cni("CHECK", h, container: c, id: "ctr-a")
        #expect(check.0 != 0 && Self.code(check.1) == 103, "CHECK after DEL fails: \(check.1)")
        #expect(Self.hostVeths(hostNS).isEmpty, "no veth left")

        let bad = try Self.cni("ADD", h, container: "no-such-netns-\(lab.prefix)", id: "ctr-b")
        #expect(Self.code(bad.1) == 3, "an unknown netns is code 3: \(bad.1)")
        lab.stopNode(hostNS)
        let down = try Self.cni("STATUS", h, container: nil, id: "x", version: "1.1.0")
        #expect(down.0 != 0 && Self.code(down.1) == 50, "STATUS with the agent down: \(down.1)")
        let addDown = try Self.cni("ADD", h, container: c, id: "ctr-c")
        #expect(Self.code(addDown.1) == 11, "ADD with the agent down: \(addDown.1)")
    }

    @Test("a CNI_NETNS that is not a namespace the agent can see (a bind mount of another mount namespace) is code 3, said plainly")
    func invisibleNamespace() throws {
        let lab = try NamespaceLab()
        let h = try Self.startHost(lab, try lab.host("h"))
        let c = try lab.host("c")
        let emptyFile = lab.directory + "/not-a-namespace"
        _ = FileManager.default.createFile(atPath: emptyFile, contents: nil)
        let add = try Self.cni("ADD", h, container: c, id: "ghost", netnsPath: emptyFile)
        #expect(add.0 != 0 && Self.code(add.1) == 3, "\(add.1)")
        #expect(add.1.contains("not visible to the agent") && add.1.contains("HostToContainer"), "\(add.1)")
        #expect(Self.hostVeths(lab.namespaces[0]).isEmpty, "nothing is left behind")
    }

    @Test("every verb in every spec version through the binary against a real agent")
    func everyVersion() throws {
        let lab = try NamespaceLab()
        let h = try Self.startHost(lab, try lab.host("h"))
        let c = try lab.host("c")
        for (i, version) in ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"].enumerated() {
            let id = "v\(i)"
            let add = try Self.cni("ADD", h, container: c, id: id, ifname: "eth\(i)", version: version)
            let result = try JSONSerialization.jsonObject(with: Data(add.1.utf8)) as? [String: Any]
            #expect(add.0 == 0 && result?["cniVersion"] as? String == version, "\(version): \(add.1)")
            let ip = (result?["ips"] as? [[String: Any]])?.first
            #expect((ip?["version"] as? String == "6") == (version < "1.0.0"), "\(version): \(add.1)")
            let check = try Self.cni("CHECK", h, container: c, id: id, ifname: "eth\(i)", version: version)
            #expect(version < "0.4.0" ? Self.code(check.1) == 1 : check.0 == 0, "CHECK \(version): \(check.1)")
            for verb in ["STATUS", "GC"] {
                let r = try Self.cni(verb, h, container: nil, id: id, version: version,
                                     extra: ",\"cni.dev/valid-attachments\":[{\"containerID\":\"\(id)\",\"ifname\":\"eth\(i)\"}]")
                #expect(version < "1.1.0" ? Self.code(r.1) == 1 : r.0 == 0, "\(verb) \(version): \(r.1)")
            }
            #expect(try Self.cni("DEL", h, container: c, id: id, ifname: "eth\(i)", version: version).0 == 0)
        }
        #expect(Self.hostVeths(lab.namespaces[0]).isEmpty)
    }

    @Test("the agent writes its conflist once it answers and leaves it on shutdown; chained, it waits for the other network's")
    func conflistByAgent() throws {
        let lab = try NamespaceLab()
        let h = try lab.host("h")
        let confDir = "\(lab.directory)/net.d"
        let path = confDir + "/10-mycelium.conflist"
        let socket = "\(lab.directory)/h.sock"
        try lab.startNode(h, arguments: ["--cni", "--cni-socket", socket, "--state-dir", "\(lab.directory)/state",
                                         "--cni-conflist", path, "--cni-route", "default", "--cni-mtu", "1380"])
        let deadline = Date().addingTimeInterval(10)
        while !lab.log(of: h).contains("CNI conflist written"), Date() < deadline { usleep(20_000) }
        let log = lab.log(of: h)
        let ready = log.range(of: "CNI agent ready"), written = log.range(of: "CNI conflist written")
        #expect(ready != nil && written != nil && ready!.lowerBound < written!.lowerBound, "written only once the socket answers: \(log)")
        let conflist = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any]
        let plugin = (conflist?["plugins"] as? [[String: Any]])?.first
        #expect(plugin?["type"] as? String == "mycelium-cni" && plugin?["socket"] as? String == socket
                    && plugin?["route"] as? String == "default" && plugin?["mtu"] as? Int == 1380, "\(String(describing: conflist))")
        // The plugin, configured from that file, is served.
        let container = try lab.host("c")
        let host = Host(namespace: h, socket: socket, state: "\(lab.directory)/state")
        #expect(try Self.cni("ADD", host, container: container, id: "from-conflist", extra: ",\"route\":\"default\",\"mtu\":1380").0 == 0)
        lab.stopNode(h)
        #expect(FileManager.default.fileExists(atPath: path), "a stopped agent leaves its conflist")

        // Chained: nothing to chain onto yet, so nothing is written; then the other network appears.
        let chainDir = "\(lab.directory)/chain.d"
        try FileManager.default.createDirectory(atPath: chainDir, withIntermediateDirectories: true)
        try lab.startNode(h, arguments: ["--cni", "--cni-socket", socket, "--state-dir", "\(lab.directory)/state",
                                         "--cni-conflist", chainDir + "/00-mycelium.conflist", "--cni-mode", "chained"])
        usleep(500_000)
        #expect(!FileManager.default.fileExists(atPath: chainDir + "/00-mycelium.conflist"))
        try #"{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"bridge","bridge":"cni0"}]}"#
            .write(toFile: chainDir + "/10-cluster.conflist", atomically: true, encoding: .utf8)
        var chained: [String: Any]?
        for _ in 0..<50 where chained == nil {
            usleep(200_000)
            chained = (try? Data(contentsOf: URL(fileURLWithPath: chainDir + "/00-mycelium.conflist")))
                .flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
        let types = (chained?["plugins"] as? [[String: Any]])?.compactMap { $0["type"] as? String }
        #expect(types == ["bridge", "mycelium-cni"] && chained?["name"] as? String == "cluster", "\(String(describing: chained)): \(lab.log(of: h))")
        lab.stopNode(h)

        // A chain that would not sort first can never be used: refused at start, naming the option.
        let r = NamespaceLab.run(["ip", "netns", "exec", h, NamespaceLab.binary, "-k", "\(lab.directory)/h.key", "--disable-peer-discovery",
                                  "--cni", "--cni-socket", socket, "--state-dir", "\(lab.directory)/state",
                                  "--cni-conflist", chainDir + "/20-mycelium.conflist", "--cni-mode", "chained"])
        #expect(r.status != 0 && r.output.contains("invalid value for --cni-conflist"), "\(r.output)")
    }

    @Test("containers on two hosts ping over the overlay; an agent restart keeps addresses and connectivity")
    func twoHosts() throws {
        let lab = try NamespaceLab()
        let h1 = try lab.host("h1"), h2 = try lab.host("h2")
        let (h1Addr, _) = try lab.link(h1, h2)
        let host1 = try Self.startHost(lab, h1)
        let host2 = try Self.startHost(lab, h2, peers: [h1Addr])
        let c1 = try lab.host("c1"), c2 = try lab.host("c2")
        #expect(try Self.cni("ADD", host1, container: c1, id: "one").0 == 0)
        #expect(try Self.cni("ADD", host2, container: c2, id: "two").0 == 0)
        let a2 = Self.containerAddress(c2)
        #expect(lab.ping(from: c1, to: a2, within: 20), "c1 cannot reach c2: \(lab.log(of: h1))")
        #expect(lab.ping(from: c2, to: Self.containerAddress(c1), within: 5))

        lab.stopNode(h2)
        _ = try Self.startHost(lab, h2, peers: [h1Addr])
        #expect(Self.containerAddress(c2) == a2, "the container keeps its address")
        #expect(lab.ping(from: c1, to: a2, within: 20), "connectivity after the agent restart: \(lab.log(of: h2))")
        #expect(try Self.cni("CHECK", host2, container: c2, id: "two").0 == 0, "the restarted agent knows the attachment")
        let readd = try Self.cni("ADD", host2, container: c2, id: "two")
        #expect(Self.code(readd.1) == 100, "the restarted agent still refuses a second ADD")
    }

    @Test("200 ADD/DEL cycles leave no veth, route or IPAM entry; GC releases what the runtime no longer holds")
    func cycles() throws {
        let lab = try NamespaceLab()
        let hostNS = try lab.host("h")
        let h = try Self.startHost(lab, hostNS)
        let containers = try (0..<4).map { try lab.host("c\($0)") }
        for i in 0..<200 {
            let c = containers[i % containers.count]
            let add = try Self.cni("ADD", h, container: c, id: "cycle-\(i)")
            #expect(add.0 == 0, "ADD \(i): \(add.1)")
            let del = try Self.cni("DEL", h, container: c, id: "cycle-\(i)")
            #expect(del.0 == 0, "DEL \(i): \(del.1)")
            if add.0 != 0 || del.0 != 0 { break }
        }
        #expect(Self.hostVeths(hostNS).isEmpty)
        let routes = NamespaceLab.run(["ip", "-n", hostNS, "-6", "route"]).output
        #expect(routes.split(separator: "\n").filter { $0.contains("/128") || $0.contains(" dev myc") && !$0.contains("dev mycelium") }.isEmpty,
                "\(routes)")
        for c in containers { #expect(!NamespaceLab.run(["ip", "-n", c, "link"]).output.contains("eth0")) }
        let state = try String(contentsOfFile: h.state + "/cni-ipam.json", encoding: .utf8)
        #expect(state.contains("\"attachments\": []"), "\(state)")

        // GC: the runtime holds only gc-0; gc-1 goes.
        #expect(try Self.cni("ADD", h, container: containers[0], id: "gc-0").0 == 0)
        #expect(try Self.cni("ADD", h, container: containers[1], id: "gc-1").0 == 0)
        let gc = try Self.cni("GC", h, container: nil, id: "x", version: "1.1.0",
                              extra: ",\"cni.dev/valid-attachments\":[{\"containerID\":\"gc-0\",\"ifname\":\"eth0\"}]")
        #expect(gc.0 == 0, "\(gc.1)")
        #expect(NamespaceLab.run(["ip", "-n", containers[0], "link"]).output.contains("eth0"))
        #expect(!NamespaceLab.run(["ip", "-n", containers[1], "link"]).output.contains("eth0"))
    }
}
