import ArgumentParser
import Logging
import MyceliumCore
import MyceliumCrypto
import MyceliumNode
import MyceliumSystem
import ServiceLifecycle

/// The options of the node itself. Each has a flag (named as in Rust Mycelium) and an
/// environment variable `MYCELIUM_<OPTION>`; a flag wins over the variable, which wins over the
/// default. docs/configuration.md lists them all.
struct NodeOptions: ParsableArguments {
    @Option(name: .long, parsing: .upToNextOption, help: "Peers to connect to, e.g. tcp://1.2.3.4:9651 tcp://[2001:db8::1]:9651 (env MYCELIUM_PEERS, space or comma separated).")
    var peers: [String] = []

    @Option(name: [.customShort("t"), .long], help: "TCP port to listen on for peers (env MYCELIUM_TCP_LISTEN_PORT; default 9651).")
    var tcpListenPort: String?

    @Option(name: .long, help: "Name of the TUN device (env MYCELIUM_TUN_NAME; default mycelium).")
    var tunName: String?

    @Flag(name: .long, help: "Run without a TUN device: route for others only (env MYCELIUM_NO_TUN=true).")
    var noTun = false

    @Option(name: .long, help: "Mark the node's own sockets with SO_MARK and keep marked traffic out of the overlay (env MYCELIUM_FIREWALL_MARK).")
    var firewallMark: String?

    @Flag(name: [.customShort("d"), .long], help: "Debug logging (env MYCELIUM_DEBUG=true).")
    var debug = false

    @Flag(name: .long, help: "Only log errors (env MYCELIUM_SILENT=true).")
    var silent = false

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// Flags over environment over defaults; the first bad value is one line naming its option.
    func resolve(environment env: [String: String]) throws -> (Node.Configuration, Logger.Level) {
        var config = Node.Configuration()
        let peerTexts = peers.isEmpty
            ? (env["MYCELIUM_PEERS"] ?? "").split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init)
            : peers
        config.peers = try peerTexts.map { text in
            do { return try Endpoint(parsing: text) } catch {
                throw Invalid(description: "invalid value for --peers (MYCELIUM_PEERS): \(error)")
            }
        }
        if let bad = config.peers.first(where: { $0.proto != .tcp }) {
            throw Invalid(description: "invalid value for --peers (MYCELIUM_PEERS): '\(bad)': only tcp:// peers are supported by this build")
        }
        if let text = tcpListenPort ?? env["MYCELIUM_TCP_LISTEN_PORT"] {
            guard let port = UInt16(text), port > 0 else {
                throw Invalid(description: "invalid value for --tcp-listen-port (MYCELIUM_TCP_LISTEN_PORT): '\(text)' is not a port from 1 to 65535")
            }
            config.tcpListenPort = port
        }
        if let name = tunName ?? env["MYCELIUM_TUN_NAME"] {
            guard (1...15).contains(name.utf8.count), !name.contains("/"), !name.contains(" ") else {
                throw Invalid(description: "invalid value for --tun-name (MYCELIUM_TUN_NAME): '\(name)' must be 1 to 15 characters without '/' or spaces")
            }
            config.tunName = name
        }
        config.noTun = try noTun || Self.bool(env, "MYCELIUM_NO_TUN", flag: "--no-tun")
        if let text = firewallMark ?? env["MYCELIUM_FIREWALL_MARK"] {
            guard let mark = Self.integer(text), mark > 0 else {
                throw Invalid(description: "invalid value for --firewall-mark (MYCELIUM_FIREWALL_MARK): '\(text)' is not a number from 1 to 4294967295")
            }
            config.firewallMark = mark
        }
        let debug = try debug || Self.bool(env, "MYCELIUM_DEBUG", flag: "--debug")
        let silent = try silent || Self.bool(env, "MYCELIUM_SILENT", flag: "--silent")
        return (config, silent ? .error : debug ? .debug : .info)
    }

    static func bool(_ env: [String: String], _ name: String, flag: String) throws -> Bool {
        guard let text = env[name] else { return false }
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "", "0", "false", "no", "off": return false
        default: throw Invalid(description: "invalid value for \(flag) (\(name)): '\(text)' is not true or false")
        }
    }

    /// Decimal or 0x-hex.
    static func integer(_ text: String) -> UInt32? {
        text.lowercased().hasPrefix("0x") ? UInt32(text.dropFirst(2), radix: 16) : UInt32(text)
    }
}

/// Runs the node until SIGINT or SIGTERM, then shuts it down cleanly.
struct NodeService: Service {
    let node: Node

    func run() async throws {
        do {
            try await node.start()
        } catch {
            await node.stop()
            throw error
        }
        try? await gracefulShutdown()
        await node.stop()
    }
}
