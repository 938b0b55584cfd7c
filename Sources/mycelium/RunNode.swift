import ArgumentParser
import Hummingbird
import Logging
import MyceliumAgent
import MyceliumAPI
import MyceliumCNI
import MyceliumCore
import MyceliumCrypto
import MyceliumNode
import MyceliumSystem
import ServiceLifecycle

/// The options of the node itself. Each has a flag (named as in Rust Mycelium) and an
/// environment variable `MYCELIUM_<OPTION>`; a flag wins over the variable, which wins over the
/// default. docs/configuration.md lists them all.
struct NodeOptions: ParsableArguments {
    @Option(name: [.customShort("c"), .long], help: "TOML config file (env MYCELIUM_CONFIG_FILE; default ~/.config/mycelium/mycelium.toml if it exists).")
    var configFile: String?

    @Option(name: .long, parsing: .upToNextOption, help: "Peers to connect to, e.g. tcp://1.2.3.4:9651 tcp://[2001:db8::1]:9651 (env MYCELIUM_PEERS, space or comma separated).")
    var peers: [String] = []

    @Option(name: [.customShort("t"), .long], help: "TCP port to listen on for peers (env MYCELIUM_TCP_LISTEN_PORT; default 9651).")
    var tcpListenPort: String?

    @Option(name: [.customShort("q"), .long], help: "UDP port to listen on and dial from for QUIC peers (env MYCELIUM_QUIC_LISTEN_PORT; default 9651).")
    var quicListenPort: String?

    @Flag(name: .long, help: "No QUIC: no UDP socket, quic:// peers refused (env MYCELIUM_DISABLE_QUIC=true; a private network never has QUIC).")
    var disableQuic = false

    @Option(name: .long, help: "Name of the TUN device (env MYCELIUM_TUN_NAME; default mycelium).")
    var tunName: String?

    @Flag(name: .long, help: "Run without a TUN device: route for others only (env MYCELIUM_NO_TUN=true).")
    var noTun = false

    @Option(name: .long, help: "TUN offloads: the kernel hands over 64 KiB TCP/UDP super-packets and takes coalesced ones; true or false (env MYCELIUM_TUN_OFFLOAD; default true, off by itself where the kernel refuses).")
    var tunOffload: String?

    @Option(name: .long, help: "Sessions with forward secrecy and replay windows between our nodes, negotiated in a way Rust nodes ignore; true or false (env MYCELIUM_SESSIONS; default true; false behaves as Rust: static keys only).")
    var sessions: String?

    @Flag(name: .long, help: "Carry data only inside sessions: refuse the static scheme from peers and never send it; for networks of our nodes only, Rust nodes become unreachable (env MYCELIUM_REQUIRE_SESSIONS=true).")
    var requireSessions = false

    @Option(name: .long, help: "Mark the node's own sockets with SO_MARK and keep marked traffic out of the overlay (env MYCELIUM_FIREWALL_MARK).")
    var firewallMark: String?

    @Option(name: .long, help: "Private network name, 2 to 64 bytes; peers then talk TLS 1.3 with the network key as PSK (env MYCELIUM_NETWORK_NAME; needs --network-key-file).")
    var networkName: String?

    @Option(name: .long, help: "File whose first 32 bytes are the private network's key (env MYCELIUM_NETWORK_KEY_FILE; needs --network-name).")
    var networkKeyFile: String?

    @Flag(name: .long, help: "Do not announce this node on the LAN nor dial nodes found there (env MYCELIUM_DISABLE_PEER_DISCOVERY=true).")
    var disablePeerDiscovery = false

    @Option(name: .long, help: "UDP port of LAN discovery (env MYCELIUM_PEER_DISCOVERY_PORT; default 9650).")
    var peerDiscoveryPort: String?

    @Option(name: .long, help: "Run LAN discovery only on this interface; repeatable (env MYCELIUM_PEER_DISCOVERY_INTERFACES, space or comma separated; default all suitable).")
    var peerDiscoveryInterface: [String] = []

    @Option(name: .long, help: "Find peers through DNS: SRV _mycelium._tcp.NAME, else A/AAAA of NAME on the TCP listen port; repeatable (env MYCELIUM_PEER_DNS, space or comma separated).")
    var peerDns: [String] = []

    @Option(name: .long, help: "TOML file saying who may send messages on which topic, and which topics go to a Unix socket (env MYCELIUM_TOPIC_CONFIG; docs/messages.md).")
    var topicConfig: String?

    @Flag(name: .long, help: "Run the CNI agent: give containers addresses in this node's /64 through the mycelium-cni plugin (env MYCELIUM_CNI=true).")
    var cni = false

    @Option(name: .long, help: "Unix socket of the CNI agent (env MYCELIUM_CNI_SOCKET; default /run/mycelium/cni.sock).")
    var cniSocket: String?

    @Option(name: .long, help: "Write the CNI conflist to this path once the agent answers, and leave it on shutdown (env MYCELIUM_CNI_CONFLIST; default: not written, see install-cni).")
    var cniConflist: String?

    @Option(name: .long, help: "Conflist mode: primary, or chained onto the network the runtime uses now (env MYCELIUM_CNI_MODE; default primary).")
    var cniMode: String?

    @Option(name: .long, help: "Routes the containers get: overlay (400::/7) or default (::/0) (env MYCELIUM_CNI_ROUTE; default overlay).")
    var cniRoute: String?

    @Option(name: .long, help: "Container MTU, 1280 to 1400 (env MYCELIUM_CNI_MTU; default 1400).")
    var cniMtu: String?

    @Option(name: .long, help: "Directory for persistent state such as the CNI agent's IPAM (env MYCELIUM_STATE_DIR; default /var/lib/mycelium).")
    var stateDir: String?

    @Option(name: .long, help: "Address of the REST API, IP:PORT (env MYCELIUM_API_ADDR; default 127.0.0.1:8989).")
    var apiAddr: String?

    @Option(name: .long, help: "Address of the JSON-RPC 2.0 API, IP:PORT (env MYCELIUM_JSONRPC_ADDR; default 127.0.0.1:8990).")
    var jsonrpcAddr: String?

    @Option(name: .long, help: "Serve Prometheus /metrics, /healthz and /readyz on IP:PORT (env MYCELIUM_METRICS_API_ADDRESS; default off).")
    var metricsApiAddress: String?

    @Flag(name: [.customShort("d"), .long], help: "Debug logging (env MYCELIUM_DEBUG=true).")
    var debug = false

    @Flag(name: .long, help: "Only log errors (env MYCELIUM_SILENT=true).")
    var silent = false

    struct Invalid: Error, CustomStringConvertible {
        let description: String
    }

    /// Keys of Rust Mycelium's config file that this build does not act on yet: accepted (so an
    /// existing file keeps working) and reported in the log.
    static let notYetSupportedKeys: Set<String> = [
        "update_workers", "cdn_cache", "enable_dns",
        "vsock_listen_port",
    ]

    /// What the daemon runs with.
    struct Resolved {
        var node: Node.Configuration
        var apiAddress: APIAddress
        var rpcAddress: APIAddress
        var metricsAddress: APIAddress?
        var cni: CNIAgent.Configuration?
        var logLevel: Logger.Level
        /// Keys of the config file this build does not act on, for the log.
        var ignored: [String]
        /// The config file that was read, if any.
        var configFile: String?
    }

    /// Flags over environment over config file over defaults; the first bad value is one line
    /// naming its option.
    func resolve(environment env: [String: String]) throws -> Resolved {
        let file = try loadConfigFile(environment: env)
        var config = Node.Configuration()
        let peerTexts = try Self.list(peers, env["MYCELIUM_PEERS"], file, "peers")
        config.peers = try peerTexts.map { text in
            do { return try Endpoint(parsing: text) } catch {
                throw Invalid(description: "invalid value for --peers (MYCELIUM_PEERS): \(error)")
            }
        }
        config.privateNetwork = try privateNetwork(env: env, file: file)
        if try disableQuic || Self.bool(env, "MYCELIUM_DISABLE_QUIC", flag: "--disable-quic") || file.bool("disable_quic") {
            config.quicListenPort = nil
        } else if let text = try quicListenPort ?? env["MYCELIUM_QUIC_LISTEN_PORT"] ?? file.text("quic_listen_port") {
            guard let port = UInt16(text), port > 0 else {
                throw Invalid(description: "invalid value for --quic-listen-port (MYCELIUM_QUIC_LISTEN_PORT): '\(text)' is not a port from 1 to 65535")
            }
            config.quicListenPort = port
        }
        for peer in config.peers {
            switch peer.proto {
            case .tcp:
                continue
            case .tls where config.privateNetwork == nil:
                throw Invalid(description: "invalid value for --peers (MYCELIUM_PEERS): '\(peer)': tls:// peers need a private network (--network-name and --network-key-file)")
            case .tls:
                continue
            case .quic where config.privateNetwork != nil:
                throw Invalid(description: "invalid value for --peers (MYCELIUM_PEERS): '\(peer)': a private network has no QUIC (as Rust's); use tls:// peers")
            case .quic where config.quicListenPort == nil:
                throw Invalid(description: "invalid value for --peers (MYCELIUM_PEERS): '\(peer)': QUIC is disabled (--disable-quic)")
            case .quic:
                if case .name = peer.host {
                    throw Invalid(description: "invalid value for --peers (MYCELIUM_PEERS): '\(peer)': quic:// peers need an IP address, not a name")
                }
            }
        }
        if let text = try tcpListenPort ?? env["MYCELIUM_TCP_LISTEN_PORT"] ?? file.text("tcp_listen_port") {
            guard let port = UInt16(text), port > 0 else {
                throw Invalid(description: "invalid value for --tcp-listen-port (MYCELIUM_TCP_LISTEN_PORT): '\(text)' is not a port from 1 to 65535")
            }
            config.tcpListenPort = port
        }
        if let name = try tunName ?? env["MYCELIUM_TUN_NAME"] ?? file.text("tun_name") {
            guard (1...15).contains(name.utf8.count), !name.contains("/"), !name.contains(" ") else {
                throw Invalid(description: "invalid value for --tun-name (MYCELIUM_TUN_NAME): '\(name)' must be 1 to 15 characters without '/' or spaces")
            }
            config.tunName = name
        }
        if let text = tunOffload ?? env["MYCELIUM_TUN_OFFLOAD"] {
            guard let on = Self.boolValue(text) else {
                throw Invalid(description: "invalid value for --tun-offload (MYCELIUM_TUN_OFFLOAD): '\(text)' is not true or false")
            }
            config.tunOffload = on
        } else if let on = try file.optionalBool("tun_offload") {
            config.tunOffload = on
        }
        if let text = sessions ?? env["MYCELIUM_SESSIONS"] {
            guard let on = Self.boolValue(text) else {
                throw Invalid(description: "invalid value for --sessions (MYCELIUM_SESSIONS): '\(text)' is not true or false")
            }
            config.sessions = on
        } else if let on = try file.optionalBool("sessions") {
            config.sessions = on
        }
        config.requireSessions = try requireSessions || Self.bool(env, "MYCELIUM_REQUIRE_SESSIONS", flag: "--require-sessions")
            || file.bool("require_sessions")
        if config.requireSessions && !config.sessions {
            throw Invalid(description: "invalid value for --require-sessions (MYCELIUM_REQUIRE_SESSIONS): sessions are off (--sessions false)")
        }
        config.noTun = try noTun || Self.bool(env, "MYCELIUM_NO_TUN", flag: "--no-tun") || file.bool("no_tun")
        config.peerDiscovery = try !(disablePeerDiscovery || Self.bool(env, "MYCELIUM_DISABLE_PEER_DISCOVERY", flag: "--disable-peer-discovery")
            || file.bool("disable_peer_discovery"))
        if let text = try peerDiscoveryPort ?? env["MYCELIUM_PEER_DISCOVERY_PORT"] ?? file.text("peer_discovery_port") {
            guard let port = UInt16(text), port > 0 else {
                throw Invalid(description: "invalid value for --peer-discovery-port (MYCELIUM_PEER_DISCOVERY_PORT): '\(text)' is not a port from 1 to 65535")
            }
            config.peerDiscoveryPort = port
        }
        config.peerDiscoveryInterfaces = try Self.list(peerDiscoveryInterface, env["MYCELIUM_PEER_DISCOVERY_INTERFACES"], file,
                                                       "peer_discovery_interfaces")
        if let bad = config.peerDiscoveryInterfaces.first(where: { !(1...15).contains($0.utf8.count) || $0.contains("/") }) {
            throw Invalid(description: "invalid value for --peer-discovery-interface (MYCELIUM_PEER_DISCOVERY_INTERFACES): '\(bad)' is not an interface name")
        }
        config.peerDNS = try Self.list(peerDns, env["MYCELIUM_PEER_DNS"], file, "peer_dns")
        if let bad = config.peerDNS.first(where: { !PeerDNSRecords.isValidName($0) }) {
            throw Invalid(description: "invalid value for --peer-dns (MYCELIUM_PEER_DNS): '\(bad)' is not a DNS name")
        }
        if let text = try firewallMark ?? env["MYCELIUM_FIREWALL_MARK"] ?? file.text("firewall_mark") {
            guard let mark = Self.integer(text), mark > 0 else {
                throw Invalid(description: "invalid value for --firewall-mark (MYCELIUM_FIREWALL_MARK): '\(text)' is not a number from 1 to 4294967295")
            }
            config.firewallMark = mark
        }
        if let path = try topicConfig ?? env["MYCELIUM_TOPIC_CONFIG"] ?? file.text("topic_config") {
            do {
                config.topics = try TopicConfigFile.parse(try TextFile.read(path))
            } catch {
                throw Invalid(description: "invalid value for --topic-config (MYCELIUM_TOPIC_CONFIG): \(path): \(error)")
            }
        }
        var apiAddress = APIAddress.defaultAPI
        if let text = try apiAddr ?? env["MYCELIUM_API_ADDR"] ?? file.text("api_addr") {
            guard let address = APIAddress(text) else {
                throw Invalid(description: "invalid value for --api-addr (MYCELIUM_API_ADDR): '\(text)' is not IP:PORT, e.g. 127.0.0.1:8989 or [::1]:8989")
            }
            apiAddress = address
        }
        let conflistPath = try (cniConflist ?? env["MYCELIUM_CNI_CONFLIST"] ?? file.text("cni_conflist")).flatMap { $0.isEmpty ? nil : $0 }
        var cniConfiguration: CNIAgent.Configuration?
        if try cni || Self.bool(env, "MYCELIUM_CNI", flag: "--cni") || file.bool("cni") {
            var c = CNIAgent.Configuration()
            if let path = try cniSocket ?? env["MYCELIUM_CNI_SOCKET"] ?? file.text("cni_socket") {
                guard path.hasPrefix("/"), path.utf8.count < 108 else {
                    throw Invalid(description: "invalid value for --cni-socket (MYCELIUM_CNI_SOCKET): '\(path)' must be an absolute path under 108 bytes")
                }
                c.socketPath = path
            }
            if let path = try stateDir ?? env["MYCELIUM_STATE_DIR"] ?? file.text("state_dir") {
                guard path.hasPrefix("/") else {
                    throw Invalid(description: "invalid value for --state-dir (MYCELIUM_STATE_DIR): '\(path)' must be an absolute path")
                }
                c.stateDirectory = path
            }
            guard !config.noTun else {
                throw Invalid(description: "invalid value for --cni (MYCELIUM_CNI): containers need the TUN device; remove --no-tun")
            }
            // Checked whether or not a conflist is written: a bad value is never silently ignored.
            let modeText = try cniMode ?? env["MYCELIUM_CNI_MODE"] ?? file.text("cni_mode")
            let routeText = try cniRoute ?? env["MYCELIUM_CNI_ROUTE"] ?? file.text("cni_route")
            let mtuText = try cniMtu ?? env["MYCELIUM_CNI_MTU"] ?? file.text("cni_mtu")
            var mode = CNIConflist.Mode.primary
            if let modeText {
                guard let m = CNIConflist.Mode(rawValue: modeText) else {
                    throw Invalid(description: "invalid value for --cni-mode (MYCELIUM_CNI_MODE): '\(modeText)' is not primary or chained")
                }
                mode = m
            }
            if let routeText, !["overlay", "default"].contains(routeText) {
                throw Invalid(description: "invalid value for --cni-route (MYCELIUM_CNI_ROUTE): '\(routeText)' is not overlay or default")
            }
            var mtu = 1400
            if let mtuText {
                guard let m = Int(mtuText), (1280...1400).contains(m) else {
                    throw Invalid(description: "invalid value for --cni-mtu (MYCELIUM_CNI_MTU): '\(mtuText)' is not a number from 1280 to 1400")
                }
                mtu = m
            }
            if let path = conflistPath {
                guard path.hasPrefix("/"), path.hasSuffix(".conflist"), !path.hasSuffix("/.conflist") else {
                    throw Invalid(description: "invalid value for --cni-conflist (MYCELIUM_CNI_CONFLIST): '\(path)' must be an absolute path ending in .conflist")
                }
                var settings = ConflistSettings(path: path)
                settings.mode = mode
                settings.route = routeText ?? settings.route
                settings.mtu = mtu
                c.conflist = settings
            } else if let option = [(modeText, "--cni-mode (MYCELIUM_CNI_MODE)"), (routeText, "--cni-route (MYCELIUM_CNI_ROUTE)"),
                                    (mtuText, "--cni-mtu (MYCELIUM_CNI_MTU)")].first(where: { $0.0 != nil })?.1 {
                throw Invalid(description: "invalid value for \(option): it shapes the conflist the agent writes; add --cni-conflist")
            }
            cniConfiguration = c
        }
        if cniConfiguration == nil, conflistPath != nil {
            throw Invalid(description: "invalid value for --cni-conflist (MYCELIUM_CNI_CONFLIST): the conflist is written by the CNI agent; add --cni")
        }
        var rpcAddress = APIAddress.defaultJSONRPC
        if let text = try jsonrpcAddr ?? env["MYCELIUM_JSONRPC_ADDR"] ?? file.text("jsonrpc_addr") {
            guard let address = APIAddress(text) else {
                throw Invalid(description: "invalid value for --jsonrpc-addr (MYCELIUM_JSONRPC_ADDR): '\(text)' is not IP:PORT, e.g. 127.0.0.1:8990")
            }
            rpcAddress = address
        }
        if rpcAddress.port == apiAddress.port, rpcAddress.port != 0,
           rpcAddress.host == apiAddress.host || ["0.0.0.0", "::"].contains(rpcAddress.host) || ["0.0.0.0", "::"].contains(apiAddress.host) {
            throw Invalid(description: "invalid value for --jsonrpc-addr (MYCELIUM_JSONRPC_ADDR): '\(rpcAddress)' overlaps --api-addr \(apiAddress)")
        }
        var metricsAddress: APIAddress?
        if let text = try metricsApiAddress ?? env["MYCELIUM_METRICS_API_ADDRESS"] ?? file.text("metrics_api_address") {
            guard let address = APIAddress(text) else {
                throw Invalid(description: "invalid value for --metrics-api-address (MYCELIUM_METRICS_API_ADDRESS): '\(text)' is not IP:PORT, e.g. 0.0.0.0:9090")
            }
            metricsAddress = address
        }
        if let metricsAddress, metricsAddress.port == apiAddress.port, metricsAddress.port != 0,
           metricsAddress.host == apiAddress.host || ["0.0.0.0", "::"].contains(metricsAddress.host) || ["0.0.0.0", "::"].contains(apiAddress.host) {
            throw Invalid(description: "invalid value for --metrics-api-address (MYCELIUM_METRICS_API_ADDRESS): '\(metricsAddress)' overlaps --api-addr \(apiAddress)")
        }
        let debug = try debug || Self.bool(env, "MYCELIUM_DEBUG", flag: "--debug")
        let silent = try silent || Self.bool(env, "MYCELIUM_SILENT", flag: "--silent")
        return Resolved(node: config, apiAddress: apiAddress, rpcAddress: rpcAddress, metricsAddress: metricsAddress, cni: cniConfiguration,
                        logLevel: silent ? .error : debug ? .debug : .info, ignored: file.ignored,
                        configFile: file.read ? file.path : nil)
    }

    /// The config file's values, checked: unknown keys are an error, Rust keys we do not act
    /// on yet are reported. A file named explicitly must exist; the default one may not.
    func loadConfigFile(environment env: [String: String]) throws -> FileValues {
        let explicit = configFile ?? env["MYCELIUM_CONFIG_FILE"]
        let home = env["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? "/root"
        let path = explicit ?? (env["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? home + "/.config") + "/mycelium/mycelium.toml"
        guard explicit != nil || TextFile.exists(path) else { return FileValues(path: path, values: [:], ignored: [], read: false) }
        let values: [String: ConfigFile.Value]
        do {
            values = try ConfigFile.parse(try TextFile.read(path))
        } catch {
            throw Invalid(description: "invalid value for --config-file (MYCELIUM_CONFIG_FILE): \(path): \(error)")
        }
        let known: Set<String> = ["peers", "tcp_listen_port", "tun_name", "tun_offload", "sessions", "require_sessions", "no_tun", "firewall_mark", "api_addr", "jsonrpc_addr", "metrics_api_address",
                                  "network_name", "network_key_file", "disable_peer_discovery", "peer_discovery_port",
                                  "peer_discovery_interfaces", "peer_dns", "topic_config", "cni", "cni_socket", "cni_conflist", "cni_mode", "cni_route", "cni_mtu", "state_dir"]
        for key in values.keys.sorted() where !known.contains(key) && !Self.notYetSupportedKeys.contains(key) {
            throw Invalid(description: "unknown key '\(key)' in config file \(path)")
        }
        return FileValues(path: path, values: values, ignored: values.keys.filter(Self.notYetSupportedKeys.contains).sorted(), read: true)
    }

    /// Typed access to the config file, with errors naming the key and the file.
    struct FileValues {
        let path: String
        let values: [String: ConfigFile.Value]
        let ignored: [String]
        let read: Bool

        func bad(_ key: String, _ expected: String) -> Invalid {
            Invalid(description: "invalid value for \(key) in config file \(path): expected \(expected)")
        }

        /// A scalar as text, for the same validation as flags and variables.
        func text(_ key: String) throws -> String? {
            switch values[key] {
            case nil: return nil
            case let .string(s)?: return s
            case let .integer(n)?: return String(n)
            default: throw bad(key, "a string or an integer")
            }
        }

        func bool(_ key: String) throws -> Bool {
            try optionalBool(key) ?? false
        }

        func optionalBool(_ key: String) throws -> Bool? {
            switch values[key] {
            case nil: return nil
            case let .boolean(b)?: return b
            default: throw bad(key, "true or false")
            }
        }

        /// An array of strings, or a single string (Rust accepts both for `peers`).
        func strings(_ key: String) throws -> [String] {
            switch values[key] {
            case nil: return []
            case let .string(s)?: return [s]
            case let .array(items)?:
                return try items.map { item in
                    guard case let .string(s) = item else { throw bad(key, "an array of strings") }
                    return s
                }
            default: throw bad(key, "a string or an array of strings")
            }
        }
    }

    /// `--network-name` and `--network-key-file` come together (as in Rust's mycelium-private).
    func privateNetwork(env: [String: String], file: FileValues) throws -> PrivateNetwork? {
        let name = try networkName ?? env["MYCELIUM_NETWORK_NAME"] ?? file.text("network_name")
        let keyPath = try networkKeyFile ?? env["MYCELIUM_NETWORK_KEY_FILE"] ?? file.text("network_key_file")
        switch (name, keyPath) {
        case (nil, nil):
            return nil
        case (_?, nil):
            throw Invalid(description: "invalid value for --network-key-file (MYCELIUM_NETWORK_KEY_FILE): missing; --network-name needs it")
        case (nil, _?):
            throw Invalid(description: "invalid value for --network-name (MYCELIUM_NETWORK_NAME): missing; --network-key-file needs it")
        case let (name?, keyPath?):
            guard PrivateNetwork.nameLengths.contains(name.utf8.count) else {
                throw Invalid(description: "invalid value for --network-name (MYCELIUM_NETWORK_NAME): '\(name)' is \(name.utf8.count) bytes; it must be 2 to 64")
            }
            let key: SecretKey
            do { key = try KeyFile.load(path: keyPath) } catch {
                throw Invalid(description: "invalid value for --network-key-file (MYCELIUM_NETWORK_KEY_FILE): \(error)")
            }
            return try PrivateNetwork(name: name, key: key.rawBytes)
        }
    }

    /// A list option: the flag's values, else the variable split at commas and spaces, else the
    /// config file's array (or single string).
    static func list(_ flag: [String], _ variable: String?, _ file: FileValues, _ key: String) throws -> [String] {
        if !flag.isEmpty { return flag }
        if let variable { return variable.split(whereSeparator: { $0 == "," || $0 == " " }).map(String.init) }
        return try file.strings(key)
    }

    static func bool(_ env: [String: String], _ name: String, flag: String) throws -> Bool {
        guard let text = env[name] else { return false }
        guard let value = boolValue(text) else {
            throw Invalid(description: "invalid value for \(flag) (\(name)): '\(text)' is not true or false")
        }
        return value
    }

    static func boolValue(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "1", "true", "yes", "on": return true
        case "", "0", "false", "no", "off": return false
        default: return nil
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
    /// Started once the node (and its TUN) is up, stopped before it.
    let agent: CNIAgent?
    /// Opened once both are up.
    let started: StartGate

    func run() async throws {
        do {
            try await node.start()
            try await agent?.start()
            started.open()
        } catch {
            await agent?.shutdown()
            await node.stop()
            throw error
        }
        try? await gracefulShutdown()
        await agent?.shutdown()
        await node.stop()
    }
}

/// An HTTP server of the daemon (API or metrics). A failure to serve (the port is taken, say)
/// stops the daemon with one line naming the option.
struct HTTPService<App: ApplicationProtocol>: Service {
    let option: String
    let address: APIAddress
    let logger: Logger
    let app: App
    /// Served once the node has started (nothing to serve if it does not).
    let after: StartGate

    func run() async throws {
        guard await after.wait() else { return }
        logger.info("serving HTTP", metadata: ["option": "\(option)", "address": "\(address)"])
        do {
            // `run()`, not `runService()`: the latter installs its own SIGTERM handler and so
            // finished on its own before our group shut down, which then exited with an error.
            try await app.run()
        } catch {
            throw NodeOptions.Invalid(description: "cannot serve \(option) \(address): \(error)")
        }
    }
}
