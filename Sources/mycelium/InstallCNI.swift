#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import MyceliumJSON
import MyceliumSystem

/// Installs the CNI plugin and its network configuration on a host (the DaemonSet's init
/// container runs it against hostPath mounts). Both files are written to a temporary name and
/// renamed, so a runtime never executes a half-copied plugin ("text file busy") nor reads a
/// half-written conflist; the conflist is written last, once the plugin is in place, and no
/// other file in either directory is touched.
struct InstallCNI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install-cni",
        abstract: "Copy the mycelium-cni plugin into the CNI bin directory and write its conflist."
    )

    @Option(help: "The plugin binary to install (default: mycelium-cni next to this executable).")
    var plugin: String?

    @Option(help: "CNI plugin directory.")
    var binDir = "/opt/cni/bin"

    @Option(help: "CNI configuration directory.")
    var confDir = "/etc/cni/net.d"

    @Option(help: "File name of the conflist in --conf-dir (sorted first wins with most runtimes).")
    var conflistName = "10-mycelium.conflist"

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
        guard conflistName.hasSuffix(".conflist"), !conflistName.contains("/") else {
            throw ValidationError("--conflist-name must be a file name ending in .conflist")
        }
    }

    /// The conflist (spec 1.0.0, 1.1.0 offered to runtimes that pick from `cniVersions`).
    static func conflist(socket: String, route: String, mtu: Int) -> JSON {
        .object([
            ("cniVersion", .string("1.0.0")),
            ("cniVersions", .array([.string("1.0.0"), .string("1.1.0")])),
            ("name", .string("mycelium")),
            ("plugins", .array([.object([
                ("type", .string("mycelium-cni")), ("socket", .string(socket)), ("route", .string(route)), ("mtu", .int(mtu)),
            ])])),
        ])
    }

    func run() throws {
        let source = plugin ?? Self.siblingPlugin()
        let bytes: [UInt8]
        do { bytes = try Self.readBinary(source) } catch {
            throw ValidationError("cannot read the plugin \(source): \(error) (use --plugin)")
        }
        try TextFile.makeDirectories(binDir)
        try TextFile.makeDirectories(confDir)
        try TextFile.writeAtomically(binDir + "/mycelium-cni", bytes, mode: 0o755)
        let text = Self.conflist(socket: cniSocket, route: route, mtu: mtu).pretty + "\n"
        try TextFile.writeAtomically(confDir + "/" + conflistName, Array(text.utf8), mode: 0o644)
        print("installed \(binDir)/mycelium-cni (\(bytes.count) bytes) and \(confDir)/\(conflistName)")
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
