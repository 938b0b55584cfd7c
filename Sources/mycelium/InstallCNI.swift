#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import MyceliumCNI
import MyceliumJSON
import MyceliumSystem

/// Installs the CNI plugin and its network configuration on a host. The Helm chart's init
/// container runs it with `--plugin-only` and leaves the conflist to the agent, which writes it
/// once it answers (`mycelium run --cni-conflist`). Both files are written to a temporary name and
/// renamed, so a runtime never executes a half-copied plugin ("text file busy") nor reads a
/// half-written conflist; the conflist is written last, once the plugin is in place, and no
/// other file in either directory is touched.
///
/// Primary and chained mode: see `CNIConflist`.
struct InstallCNI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-cni",
        abstract: "Copy the mycelium-cni plugin into the CNI bin directory and write its conflist."
    )

    @Option(help: "The plugin binary to install (default: mycelium-cni next to this executable).")
    var plugin: String?

    @Flag(help: "Copy the plugin only; the agent writes the conflist once it answers (mycelium run --cni-conflist), as the Helm chart does.")
    var pluginOnly = false

    @Option(help: "CNI plugin directory.")
    var binDir = "/opt/cni/bin"

    @Option(help: "CNI configuration directory.")
    var confDir = "/etc/cni/net.d"

    @Option(help: "primary: containers' eth0 gets the overlay address; chained: a second interface (myc0) is added after the network the runtime uses now.")
    var mode = "primary"

    @Option(help: "File name of the conflist in --conf-dir; runtimes use the first by name (default 10-mycelium.conflist, chained 00-mycelium.conflist).")
    var conflistName: String?

    @Option(help: "Chained mode: wait up to this many seconds for the other network's conflist to appear.")
    var wait = 0

    @Option(help: "The agent's socket, as given to the node with --cni-socket.")
    var cniSocket = "/run/mycelium/cni.sock"

    @Option(help: "Routes the containers get: 'overlay' (400::/7) or 'default' (::/0).")
    var route = "overlay"

    @Option(help: "Container MTU, 1280 to 1400.")
    var mtu = 1400

    func validate() throws {
        guard ["overlay", "default"].contains(route) else { throw ValidationError("--route must be 'overlay' or 'default'") }
        guard (1280...1400).contains(mtu) else { throw ValidationError("--mtu must be from 1280 to 1400 (the overlay's MTU)") }
        guard cniSocket.hasPrefix("/") else { throw ValidationError("--cni-socket must be an absolute path") }
        guard ["primary", "chained"].contains(mode) else { throw ValidationError("--mode must be 'primary' or 'chained'") }
        guard (0...3600).contains(wait) else { throw ValidationError("--wait must be from 0 to 3600 seconds") }
        if let conflistName, !conflistName.hasSuffix(".conflist") || conflistName.contains("/") {
            throw ValidationError("--conflist-name must be a file name ending in .conflist")
        }
    }

    var outputName: String { conflistName ?? CNIConflist.defaultName(mode == "chained" ? .chained : .primary) }

    func run() throws {
        let source = plugin ?? Self.siblingPlugin()
        let bytes: [UInt8]
        do { bytes = try Self.readBinary(source) } catch {
            throw ValidationError("cannot read the plugin \(source): \(error) (use --plugin)")
        }
        if pluginOnly {
            try TextFile.makeDirectories(binDir)
            try TextFile.writeAtomically(binDir + "/mycelium-cni", bytes, mode: 0o755)
            print("installed \(binDir)/mycelium-cni (\(bytes.count) bytes)")
            return
        }
        let name = outputName
        let conflist: JSON
        var chainedOnto = ""
        if mode == "chained" {
            var source = CNIConflist.current(among: TextFile.list(confDir), excluding: name)
            for _ in 0..<wait where source == nil {
                sleep(1)
                source = CNIConflist.current(among: TextFile.list(confDir), excluding: name)
            }
            guard let source else {
                throw ValidationError("no other network's conflist in \(confDir) to chain onto\(wait > 0 ? " after \(wait) s" : "") (--mode chained)")
            }
            guard name < source else {
                throw ValidationError("\(name) would not sort before \(source), so runtimes would not use it: pass --conflist-name")
            }
            let parsed: JSON
            do { parsed = try JSON(parsing: try TextFile.read(confDir + "/" + source)) } catch {
                throw ValidationError("cannot read \(confDir)/\(source): \(error)")
            }
            do { conflist = try CNIConflist.chained(parsed, name: source, socket: cniSocket, route: route, mtu: mtu) } catch {
                throw ValidationError(error.description)
            }
            chainedOnto = ", chained after \(source)"
        } else {
            conflist = CNIConflist.primary(socket: cniSocket, route: route, mtu: mtu)
        }
        try TextFile.makeDirectories(binDir)
        try TextFile.makeDirectories(confDir)
        try TextFile.writeAtomically(binDir + "/mycelium-cni", bytes, mode: 0o755)
        try TextFile.writeAtomically(confDir + "/" + name, Array((conflist.pretty + "\n").utf8), mode: 0o644)
        print("installed \(binDir)/mycelium-cni (\(bytes.count) bytes) and \(confDir)/\(name)\(chainedOnto)")
    }

    static func siblingPlugin() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "mycelium-cni" }
        let exe = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(exe[..<(exe.lastIndex(of: "/") ?? exe.startIndex)]) + "/mycelium-cni"
    }

    static func readBinary(_ path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open \(path)", errno: errno) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n >= 0 else { throw SystemError("read \(path)", errno: errno) }
            if n == 0 { return out }
            out += chunk[0..<n]
        }
    }
}
