import Foundation
import MyceliumTesting

/// A small lab of network namespaces joined by veth pairs, with `mycelium` nodes running in
/// them exactly as a user would start them. Everything it creates it removes; every wait is
/// bounded. Only addresses inside its own namespaces are used (fd77::/16 on the veths).
final class NamespaceLab {
    struct NodeHandle {
        let namespace: String
        let keyFile: String
        let logFile: String
        let process: Process
    }

    let prefix: String
    private(set) var namespaces: [String] = []
    private(set) var nodes: [String: NodeHandle] = [:]
    /// Links made so far; link `n` (1-based) has veths `v{n}a`/`v{n}b`.
    private(set) var linkCount = 0
    let directory: String

    /// The built `mycelium`, or `MYCELIUM_LAB_BINARY` (bench/hostile.sh measures another build).
    static let binary = ProcessInfo.processInfo.environment["MYCELIUM_LAB_BINARY"] ?? Shell.product("mycelium")

    init() throws {
        prefix = "ml\(UInt16.random(in: 0...UInt16.max))"
        directory = NSTemporaryDirectory() + "mycelium-lab-" + prefix
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        for node in nodes.values { Self.terminate(node.process) }
        for ns in namespaces { _ = Self.run(["ip", "netns", "del", ns]) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    @discardableResult
    static func run(_ args: [String], timeout: TimeInterval = 20) -> (status: Int32, output: String) {
        Shell.run(args, timeout: timeout)
    }

    static func terminate(_ p: Process) {
        guard p.isRunning else { return }
        p.terminate()  // SIGTERM: graceful shutdown
        let deadline = Date().addingTimeInterval(5)
        while p.isRunning, Date() < deadline { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    /// A new namespace with loopback up.
    func host(_ name: String) throws -> String {
        let ns = "\(prefix)\(name)"
        guard Self.run(["ip", "netns", "add", ns]).status == 0 else { throw LabError("cannot create namespace \(ns)") }
        namespaces.append(ns)
        Self.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        // No duplicate address detection: link-local addresses are usable (for LAN discovery)
        // the moment a link is up, instead of a second or two later.
        Self.run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"])
        return ns
    }

    /// One LAN segment: a bridge (in a namespace of its own) with a veth port to each of
    /// `hosts`; returns each host's underlay address. Multicast snooping is off, so the bridge
    /// floods multicast like a plain switch.
    @discardableResult
    func lan(_ hosts: [String]) throws -> [String] {
        let sw = try host("sw")
        guard Self.run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0"]).status == 0 else {
            throw LabError("cannot create bridge in \(sw)")
        }
        Self.run(["ip", "-n", sw, "link", "set", "br0", "up"])
        return try hosts.enumerated().map { i, ns in
            let port = "p\(i)", inside = "lan0"
            guard Self.run(["ip", "link", "add", port, "netns", sw, "type", "veth", "peer", "name", inside, "netns", ns]).status == 0 else {
                throw LabError("cannot create LAN port for \(ns)")
            }
            Self.run(["ip", "-n", sw, "link", "set", port, "master", "br0", "up"])
            let address = "fd78::\(i + 1)"
            Self.run(["ip", "-n", ns, "addr", "add", "\(address)/64", "dev", inside, "nodad"])
            Self.run(["ip", "-n", ns, "link", "set", inside, "up"])
            return address
        }
    }

    /// Joins two namespaces with a veth pair; returns their underlay addresses (a, b).
    @discardableResult
    func link(_ a: String, _ b: String) throws -> (String, String) {
        linkCount += 1
        let n = linkCount
        let ifA = "v\(n)a", ifB = "v\(n)b"
        guard Self.run(["ip", "link", "add", ifA, "netns", a, "type", "veth", "peer", "name", ifB, "netns", b]).status == 0 else {
            throw LabError("cannot create veth \(ifA)")
        }
        let addrA = "fd77:\(n)::1", addrB = "fd77:\(n)::2"
        Self.run(["ip", "-n", a, "addr", "add", "\(addrA)/64", "dev", ifA, "nodad"])
        Self.run(["ip", "-n", b, "addr", "add", "\(addrB)/64", "dev", ifB, "nodad"])
        Self.run(["ip", "-n", a, "link", "set", ifA, "up"])
        Self.run(["ip", "-n", b, "link", "set", ifB, "up"])
        return (addrA, addrB)
    }

    /// Deletes the veth of link `n` (as created by `link`): both ends go.
    func cut(link n: Int, in namespace: String) {
        Self.run(["ip", "-n", namespace, "link", "del", "v\(n)a"])
    }

    /// Re-creates link `n` between `a` and `b` after a `cut`, with its old names and addresses
    /// (as a repaired cable: the nodes' configured peers are reachable again).
    func restore(link n: Int, _ a: String, _ b: String) {
        let ifA = "v\(n)a", ifB = "v\(n)b"
        Self.run(["ip", "link", "add", ifA, "netns", a, "type", "veth", "peer", "name", ifB, "netns", b])
        Self.run(["ip", "-n", a, "addr", "add", "fd77:\(n)::1/64", "dev", ifA, "nodad"])
        Self.run(["ip", "-n", b, "addr", "add", "fd77:\(n)::2/64", "dev", ifB, "nodad"])
        Self.run(["ip", "-n", a, "link", "set", ifA, "up"])
        Self.run(["ip", "-n", b, "link", "set", ifB, "up"])
    }

    /// Kills the node in `namespace` with SIGKILL (a crash: no goodbye to its peers).
    func killNode(_ namespace: String) {
        guard let node = nodes[namespace], node.process.isRunning else { return }
        kill(node.process.processIdentifier, SIGKILL)
        node.process.waitUntilExit()
    }

    /// Starts `mycelium` in `namespace` with the given peers and extra arguments. LAN discovery
    /// is off unless asked for, so a test's topology is exactly the peers it gives.
    @discardableResult
    func startNode(_ namespace: String, peers: [String] = [], arguments: [String] = [], environment: [String: String] = [:],
                   discovery: Bool = false) throws -> NodeHandle {
        let keyFile = nodes[namespace]?.keyFile ?? "\(directory)/\(namespace).key"
        let logFile = "\(directory)/\(namespace).log"
        _ = FileManager.default.createFile(atPath: logFile, contents: nil)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ip", "netns", "exec", namespace, Self.binary, "-k", keyFile]
            + (peers.isEmpty ? [] : ["--peers"] + peers.map { "tcp://[\($0)]:9651" }) + arguments
            + (discovery ? [] : ["--disable-peer-discovery"])
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        p.environment = env
        let output = FileHandle(forWritingAtPath: logFile)!
        p.standardOutput = output
        p.standardError = output
        try p.run()
        let handle = NodeHandle(namespace: namespace, keyFile: keyFile, logFile: logFile, process: p)
        nodes[namespace] = handle
        // Wait (bounded) until the node says it started.
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if log(of: namespace).contains("node started") { return handle }
            if !p.isRunning { throw LabError("node in \(namespace) exited: \(log(of: namespace))") }
            usleep(20_000)
        }
        throw LabError("node in \(namespace) did not start: \(log(of: namespace))")
    }

    func stopNode(_ namespace: String) {
        if let node = nodes[namespace] { Self.terminate(node.process) }
    }

    func log(of namespace: String) -> String {
        guard let node = nodes[namespace] else { return "" }
        return (try? String(contentsOfFile: node.logFile, encoding: .utf8)) ?? ""
    }

    /// The overlay address of the node in `namespace`, from its key file.
    func address(of namespace: String) throws -> String { try inspect(namespace, "address") }

    /// A field of `mycelium inspect --json` for the node in `namespace` (its key file).
    func inspect(_ namespace: String, _ field: String) throws -> String {
        let r = Self.run([Self.binary, "inspect", "--json", "-k", nodes[namespace]!.keyFile])
        guard let json = try JSONSerialization.jsonObject(with: Data(r.output.utf8)) as? [String: String], let value = json[field] else {
            throw LabError("inspect failed: \(r.output)")
        }
        return value
    }

    /// Pings once per second until one answer arrives or `seconds` pass. An attempt that fails
    /// at once (an ICMPv6 "no route" while routes converge) still waits out its second, so
    /// the bound is time, not a count of attempts.
    func ping(from namespace: String, to address: String, within seconds: Int) -> Bool {
        let deadline = Date().addingTimeInterval(TimeInterval(max(1, seconds)))
        repeat {
            let attempt = Date()
            if Self.run(["ip", "netns", "exec", namespace, "ping", "-6", "-c", "1", "-W", "1", address], timeout: 5).status == 0 { return true }
            let left = 1 - Date().timeIntervalSince(attempt)
            if left > 0 { usleep(UInt32(left * 1_000_000)) }
        } while Date() < deadline
        return false
    }
}

struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
