import ArgumentParser
import MyceliumAPI
import MyceliumCore
import MyceliumSystem

/// Prints the configuration the node would run with, after flags, environment, config file and
/// defaults are merged: the quickest way to see which setting won.
struct ShowConfig: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show-config",
        abstract: "Print the node configuration resolved from flags, MYCELIUM_* variables, the config file and defaults."
    )

    @OptionGroup var key: KeyFileOptions
    @OptionGroup var options: NodeOptions

    func run() throws {
        let env = Environment.current
        let resolved = try options.resolve(environment: env)
        let config = resolved.node
        let keyPath = key.resolvedPath(environment: env)
        let lines = [
            "\"keyFile\": \(JSON.quoted(keyPath))",
            "\"peers\": [" + config.peers.map { JSON.quoted($0.description) }.joined(separator: ", ") + "]",
            "\"tcpListenPort\": \(config.tcpListenPort)",
            // null: QUIC disabled, or a private network (which has none).
            "\"quicListenPort\": " + (config.privateNetwork == nil ? config.quicListenPort.map(String.init) ?? "null" : "null"),
            "\"tunName\": \(JSON.quoted(config.tunName))",
            "\"noTun\": \(config.noTun)",
            "\"tunOffload\": \(config.tunOffload)",
            "\"sessions\": \(config.sessions)",
            "\"requireSessions\": \(config.requireSessions)",
            "\"firewallMark\": " + (config.firewallMark.map(String.init) ?? "null"),
            // The key itself is never printed.
            "\"networkName\": " + (config.privateNetwork.map { JSON.quoted($0.name) } ?? "null"),
            "\"peerDiscovery\": \(config.peerDiscovery)",
            "\"peerDiscoveryPort\": \(config.peerDiscoveryPort)",
            "\"peerDiscoveryInterfaces\": [" + config.peerDiscoveryInterfaces.map(JSON.quoted).joined(separator: ", ") + "]",
            "\"peerDNS\": [" + config.peerDNS.map(JSON.quoted).joined(separator: ", ") + "]",
            "\"topics\": {\"defaultAccept\": \(config.topics.defaultAccept), \"topics\": ["
                + config.topics.names.map { JSON.quoted(String(decoding: $0, as: UTF8.self)) }.joined(separator: ", ") + "]}",
            "\"apiAddr\": \(JSON.quoted(resolved.apiAddress.description))",
            "\"jsonrpcAddr\": \(JSON.quoted(resolved.rpcAddress.description))",
            "\"metricsApiAddress\": " + (resolved.metricsAddress.map { JSON.quoted($0.description) } ?? "null"),
            "\"cni\": " + (resolved.cni.map { c in
                "{\"socket\": \(JSON.quoted(c.socketPath)), \"stateDir\": \(JSON.quoted(c.stateDirectory)), \"conflist\": "
                    + (c.conflist.map { "{\"path\": \(JSON.quoted($0.path)), \"mode\": \(JSON.quoted($0.mode.rawValue)), "
                        + "\"route\": \(JSON.quoted($0.route)), \"mtu\": \($0.mtu)}" } ?? "null") + "}"
            } ?? "null"),
            "\"logLevel\": \(JSON.quoted("\(resolved.logLevel)"))",
            "\"configFile\": " + (resolved.configFile.map(JSON.quoted) ?? "null"),
            "\"ignoredConfigKeys\": [" + resolved.ignored.map(JSON.quoted).joined(separator: ", ") + "]",
        ]
        print("{\n  " + lines.joined(separator: ",\n  ") + "\n}")
    }
}
