import ArgumentParser
import MyceliumAgent
import MyceliumAPI
import Logging
import MyceliumCrypto
import MyceliumNode
import MyceliumSystem
import ServiceLifecycle

@main
struct Mycelium: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "mycelium",
        abstract: "A Mycelium overlay node and container network agent.",
        discussion: """
            Without a subcommand, runs the node (`mycelium run`). Wire-compatible with the Rust \
            Mycelium network (v0.7.10). Every node option can also be set as MYCELIUM_<OPTION>.
            """,
        version: version,
        subcommands: [Run.self, Inspect.self, GenerateKeys.self, ShowConfig.self, Peers.self, Routes.self, Sessions.self, Stats.self, Message.self, Proxy.self, HealthCheck.self, InstallCNI.self],
        defaultSubcommand: Run.self
    )
}

/// Runs the node: the default command, so `mycelium --peers …` works as in Rust. The node's
/// options live here rather than on the root so that they cannot shadow the same-named options
/// of other subcommands (`peers list --api-addr …`).
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the node (the default when no subcommand is given).")

    @OptionGroup var key: KeyFileOptions
    @OptionGroup var options: NodeOptions

    func run() async throws {
        let environment = Environment.current
        let resolved = try options.resolve(environment: environment)
        let keyPath = key.resolvedPath(environment: environment)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = resolved.logLevel
            return handler
        }
        let logger = Logger(label: "mycelium")
        if !resolved.ignored.isEmpty {
            logger.warning("config file keys not supported by this build were ignored", metadata: ["keys": "\(resolved.ignored)"])
        }
        // A taken port fails here, in one line naming its option, before the key or the node.
        for (option, address) in [("--api-addr", resolved.apiAddress), ("--jsonrpc-addr", resolved.rpcAddress)]
            + (resolved.metricsAddress.map { [("--metrics-api-address", $0)] } ?? []) {
            do { try await address.probe() } catch {
                throw NodeOptions.Invalid(description: "cannot serve \(option) \(address): \(error)")
            }
        }
        let (secret, created) = try KeyFile.loadOrCreate(path: keyPath)
        if created { logger.info("generated a new node key", metadata: ["path": "\(keyPath)"]) }
        if let own = resolved.node.peers.first(where: { $0.key == secret.publicKey }) {
            throw NodeOptions.Invalid(description: "invalid value for --peers (MYCELIUM_PEERS): \(own) pins this node's own key")
        }
        let node = Node(identity: NodeIdentity(secretKey: secret), configuration: resolved.node, logger: logger)
        let agent = resolved.cni.map { configuration in
            CNIAgent(configuration: configuration, subnet: node.identity.subnet, nodeAddress: node.identity.address,
                     logger: logger, isReady: { node.isTunReady })
        }
        let started = StartGate()
        var services: [any Service] = [NodeService(node: node, agent: agent, started: started)]
        var attachments: (@Sendable () -> Int)?
        if let agent { attachments = { agent.attachmentCount } }
        let router = APIServer.router(node: node, cniAttachments: attachments)
        services.append(HTTPService(option: "--api-addr", address: resolved.apiAddress, logger: logger,
                                    app: APIServer.application(router: router, address: resolved.apiAddress,
                                                               name: "mycelium-api", logger: logger), after: started))
        services.append(HTTPService(option: "--jsonrpc-addr", address: resolved.rpcAddress, logger: logger,
                                    app: APIServer.application(router: RPCMethods.router(node: node), address: resolved.rpcAddress,
                                                               name: "mycelium-jsonrpc", logger: logger), after: started))
        if let address = resolved.metricsAddress {
            let router = APIServer.metricsRouter(node: node, metrics: NodeMetrics())
            services.append(HTTPService(option: "--metrics-api-address", address: address, logger: logger,
                                        app: APIServer.application(router: router, address: address, name: "mycelium-metrics", logger: logger), after: started))
        }
        let group = ServiceGroup(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        try await group.run()
    }
}

/// `-k/--key-file`, shared by every command that touches the node key.
struct KeyFileOptions: ParsableArguments {
    @Option(name: [.customShort("k"), .long], help: ArgumentHelp(
        "Path to the private key file (env MYCELIUM_KEY_FILE).",
        discussion: "Default: $XDG_DATA_HOME/mycelium/priv_key.bin, else ~/.local/share/mycelium/priv_key.bin."))
    var keyFile: String?

    /// The flag, else MYCELIUM_KEY_FILE, else the XDG default: the same file for `run`,
    /// `inspect` and `generate-keys`, so `docker exec … mycelium inspect` reads the node's key.
    func resolvedPath(environment: [String: String] = Environment.current) -> String {
        keyFile ?? environment["MYCELIUM_KEY_FILE"] ?? DefaultPaths.keyFile(environment: environment)
    }
}
