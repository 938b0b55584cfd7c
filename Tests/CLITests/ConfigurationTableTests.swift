import Foundation
import Testing

/// docs/configuration.md's table, the daemon's options and the MYCELIUM_* variables agree: every
/// option is documented with its variable, no row names an option that is gone, and every
/// documented variable really changes what `mycelium show-config` resolves.
@Suite struct ConfigurationTableTests {
    struct Row {
        let flags: [String]
        let variable: String
    }

    static let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("docs/configuration.md")

    /// The option table's rows: long flags of the first column, the variable of the second.
    static func rows() throws -> [Row] {
        let text = try String(contentsOf: docs, encoding: .utf8)
        return text.split(separator: "\n").compactMap { line -> Row? in
            let cells = line.split(separator: "|", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard cells.count > 3, cells[1].hasPrefix("`") else { return nil }
            let flags = cells[1].matches(of: /--[a-z][a-z-]*/).map { String($0.output) }
            guard let variable = cells[2].firstMatch(of: /MYCELIUM_[A-Z_]+/).map({ String($0.output) }) else { return nil }
            return Row(flags: flags, variable: variable)
        }
    }

    /// (long name, help text) of every option of `mycelium run`, from ArgumentParser's own dump.
    static func options() throws -> [(name: String, help: String)] {
        let r = try CLITests.run(["run", "--experimental-dump-help"])
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let arguments = (json?["command"] as? [String: Any])?["arguments"] as? [[String: Any]] ?? []
        return arguments.compactMap { argument in
            let names = argument["names"] as? [[String: Any]] ?? []
            guard let long = names.first(where: { $0["kind"] as? String == "long" })?["name"] as? String,
                  !["help", "version"].contains(long) else { return nil }
            return ("--" + long, argument["abstract"] as? String ?? "")
        }
    }

    /// A value for each variable and what `show-config` must then print; variables that only act
    /// together are probed together.
    static let probes: [(env: [String: String], key: String, expected: String)] = [
        (["MYCELIUM_KEY_FILE": "/tmp/probe/key.bin"], "keyFile", "\"/tmp/probe/key.bin\""),
        (["MYCELIUM_PEERS": "tcp://10.0.0.1:9651, tcp://[2001:db8::1]:9651"], "peers", "[\"tcp://10.0.0.1:9651\",\"tcp://[2001:db8::1]:9651\"]"),
        (["MYCELIUM_TCP_LISTEN_PORT": "1234"], "tcpListenPort", "1234"),
        (["MYCELIUM_QUIC_LISTEN_PORT": "4321"], "quicListenPort", "4321"),
        (["MYCELIUM_DISABLE_QUIC": "true"], "quicListenPort", "null"),
        (["MYCELIUM_TUN_NAME": "myc9"], "tunName", "\"myc9\""),
        (["MYCELIUM_NO_TUN": "yes"], "noTun", "true"),
        (["MYCELIUM_TUN_OFFLOAD": "false"], "tunOffload", "false"),
        (["MYCELIUM_SESSIONS": "false"], "sessions", "false"),
        (["MYCELIUM_REQUIRE_SESSIONS": "true"], "requireSessions", "true"),
        (["MYCELIUM_FIREWALL_MARK": "0x10"], "firewallMark", "16"),
        (["MYCELIUM_NETWORK_NAME": "probe-net", "MYCELIUM_NETWORK_KEY_FILE": "KEYFILE"], "networkName", "\"probe-net\""),
        (["MYCELIUM_DISABLE_PEER_DISCOVERY": "on"], "peerDiscovery", "false"),
        (["MYCELIUM_PEER_DISCOVERY_PORT": "9700"], "peerDiscoveryPort", "9700"),
        (["MYCELIUM_PEER_DISCOVERY_INTERFACES": "eth0 eth1"], "peerDiscoveryInterfaces", "[\"eth0\",\"eth1\"]"),
        (["MYCELIUM_CNI": "true", "MYCELIUM_CNI_SOCKET": "/tmp/probe/cni.sock", "MYCELIUM_STATE_DIR": "/tmp/probe/state"], "cni",
         "{\"conflist\":null,\"socket\":\"/tmp/probe/cni.sock\",\"stateDir\":\"/tmp/probe/state\"}"),
        (["MYCELIUM_CNI": "true", "MYCELIUM_CNI_CONFLIST": "/tmp/probe/net.d/05-m.conflist", "MYCELIUM_CNI_MODE": "chained",
          "MYCELIUM_CNI_ROUTE": "default", "MYCELIUM_CNI_MTU": "1300"], "cni",
         "{\"conflist\":{\"mode\":\"chained\",\"mtu\":1300,\"path\":\"/tmp/probe/net.d/05-m.conflist\",\"route\":\"default\"},"
            + "\"socket\":\"/run/mycelium/cni.sock\",\"stateDir\":\"/var/lib/mycelium\"}"),
        (["MYCELIUM_PEER_DNS": "peers.example, other.example"], "peerDNS", "[\"peers.example\",\"other.example\"]"),
        (["MYCELIUM_API_ADDR": "127.0.0.1:1111"], "apiAddr", "\"127.0.0.1:1111\""),
        (["MYCELIUM_JSONRPC_ADDR": "[::1]:2222"], "jsonrpcAddr", "\"[::1]:2222\""),
        (["MYCELIUM_METRICS_API_ADDRESS": "[::]:9100"], "metricsApiAddress", "\"[::]:9100\""),
        (["MYCELIUM_CONFIG_FILE": "CONFIGFILE"], "configFile", "\"CONFIGFILE\""),
        (["MYCELIUM_TOPIC_CONFIG": "TOPICFILE"], "topics", "{\"defaultAccept\":false,\"topics\":[\"chat.room\",\"legacy\"]}"),
        (["MYCELIUM_DEBUG": "1"], "logLevel", "\"debug\""),
        (["MYCELIUM_SILENT": "true"], "logLevel", "\"error\""),
    ]

    @Test("every option of the daemon is a row of docs/configuration.md with its variable, and every row is an option")
    func documented() throws {
        let rows = try Self.rows()
        let options = try Self.options()
        #expect(options.count >= 19, "the dump lists the options: \(options.map(\.name))")
        let documentedFlags = Set(rows.flatMap(\.flags))
        for option in options {
            #expect(documentedFlags.contains(option.name), "\(option.name) is not in docs/configuration.md")
            let row = rows.first { $0.flags.contains(option.name) }
            if let row {
                #expect(option.help.contains(row.variable), "--help of \(option.name) does not name \(row.variable)")
            }
        }
        let optionNames = Set(options.map(\.name))
        for flag in documentedFlags { #expect(optionNames.contains(flag), "docs/configuration.md documents \(flag), which mycelium run does not have") }
        #expect(Set(rows.map(\.variable)) == Set(Self.probes.flatMap(\.env.keys)), "every documented variable is probed below")
    }

    @Test("every documented variable changes what the node resolves")
    func variablesTakeEffect() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let keyFile = dir + "/net.key", configFile = dir + "/probe.toml"
        try Data(repeating: 7, count: 32).write(to: URL(fileURLWithPath: keyFile))
        try "tcp_listen_port = 4444\n".write(toFile: configFile, atomically: true, encoding: .utf8)
        let topicFile = dir + "/topics.toml"
        try "default = \"Reject\"\n\"chat.room\" = { subnets = [\"400::/7\"] }\nlegacy = [\"400::1\"]\n"
            .write(toFile: topicFile, atomically: true, encoding: .utf8)
        let baseline = try ConfigPrecedenceTests.show([]).1
        for probe in Self.probes {
            var env = probe.env.mapValues { $0 == "KEYFILE" ? keyFile : $0 == "CONFIGFILE" ? configFile : $0 == "TOPICFILE" ? topicFile : $0 }
            env["HOME"] = dir
            let (r, json) = try ConfigPrecedenceTests.show([], env: env)
            #expect(r.status == 0, "\(probe.env): \(r.stderr)")
            let expected = probe.expected.replacingOccurrences(of: "CONFIGFILE", with: configFile)
            let got = json[probe.key].flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]) }
                .map { String(decoding: $0, as: UTF8.self) }
            #expect(got == expected, "\(probe.env) → \(probe.key) = \(got ?? "nil")")
            let before = baseline[probe.key].flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.fragmentsAllowed, .sortedKeys]) }
            #expect(before.map { String(decoding: $0, as: UTF8.self) } != got, "\(probe.key) is already \(expected) by default")
        }
    }
}
