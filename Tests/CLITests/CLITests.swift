import Foundation
import Testing

/// Runs the built `mycelium` binary as a user would.
@Suite struct CLITests {
    struct Result { let status: Int32; let stdout: String; let stderr: String }

    /// The executable sits beside the test bundle in the build directory.
    static let binary: URL = {
        var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 where !FileManager.default.fileExists(atPath: dir.appendingPathComponent("mycelium").path) {
            dir = dir.deletingLastPathComponent()
        }
        return dir.appendingPathComponent("mycelium")
    }()

    static func run(_ args: [String], env: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = binary
        process.arguments = args
        var environment = ProcessInfo.processInfo.environment
        environment.merge(env) { $1 }
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let stdout = out.fileHandleForReading.readDataToEndOfFile()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                      stderr: String(decoding: stderr, as: UTF8.self))
    }

    static func tempDir() throws -> String {
        let path = NSTemporaryDirectory() + "mycelium-cli-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Full Foundation drags ICU and its own code into every static build (about 5 MB of binary
    /// and of idle RSS); the node needs only FoundationEssentials, which its dependencies use.
    @Test("the node binary links FoundationEssentials only, not Foundation or ICU")
    func noFullFoundation() throws {
        let ldd = Process()
        ldd.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
        ldd.arguments = [Self.binary.path]
        let out = Pipe()
        ldd.standardOutput = out
        try ldd.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        ldd.waitUntilExit()
        #expect(text.contains("libswiftCore"), "ldd output: \(text)")
        #expect(!text.contains("libFoundation.so"))
        #expect(!text.contains("FoundationInternationalization"))
        #expect(!text.contains("_FoundationICU"))
    }

    @Test("inspect --json of a public key prints the Rust shape plus subnet")
    func inspectJSON() throws {
        let r = try Self.run(["inspect", "--json", "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"])
        #expect(r.status == 0)
        #expect(r.stdout == """
            {
              "publicKey": "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a",
              "address": "520:c662:fd00:9e92:5d99:34ed:ab8:82ab",
              "subnet": "520:c662:fd00:9e92::/64"
            }

            """)
    }

    @Test("inspect text output and a bad key")
    func inspectText() throws {
        let r = try Self.run(["inspect", "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("Public key: de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f\n"))
        #expect(r.stdout.contains("Address: 52d:dc0:ab0c:851a:6e34:e79d:1f3f:15d3\n"))
        let bad = try Self.run(["inspect", "xyz"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("64 hex characters"))
    }

    @Test("generate-keys creates, refuses to overwrite, and --force replaces; inspect reads the file")
    func generateKeys() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/k/priv_key.bin"
        let first = try Self.run(["generate-keys", "-k", path, "--json"])
        #expect(first.status == 0, "\(first.stderr)")
        let inspect = try Self.run(["inspect", "--json", "--key-file", path])
        #expect(inspect.stdout == first.stdout)

        let again = try Self.run(["generate-keys", "-k", path])
        #expect(again.status != 0)
        #expect(again.stderr.contains("already exists"))
        #expect(try Self.run(["inspect", "--json", "-k", path]).stdout == first.stdout)

        let forced = try Self.run(["generate-keys", "-k", path, "--force", "--json"])
        #expect(forced.status == 0)
        #expect(forced.stdout != first.stdout)
    }

    @Test("the default key path comes from XDG_DATA_HOME; a missing or short file is a one-line error")
    func defaultPathAndErrors() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let created = try Self.run(["generate-keys"], env: ["XDG_DATA_HOME": dir])
        #expect(created.status == 0)
        #expect(FileManager.default.fileExists(atPath: dir + "/mycelium/priv_key.bin"))

        let missing = try Self.run(["inspect", "-k", dir + "/nope.bin"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("does not exist"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/nope.bin"), "inspect must not create a key")

        _ = FileManager.default.createFile(atPath: dir + "/short.bin", contents: Data([1, 2, 3]))
        let short = try Self.run(["inspect", "-k", dir + "/short.bin"])
        #expect(short.status != 0)
        #expect(short.stderr.split(separator: "\n").count == 1)
        #expect(short.stderr.contains("3 bytes"))
    }

    @Test("install-cni copies the plugin and writes the conflist, touching nothing else; bad options are refused")
    func installCNI() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/net.d", withIntermediateDirectories: true)
        try Data("{\"other\": true}".utf8).write(to: URL(fileURLWithPath: dir + "/net.d/05-other.conflist"))
        let r = try Self.run(["install-cni", "--bin-dir", dir + "/bin", "--conf-dir", dir + "/net.d", "--cni-socket", "/run/x.sock",
                              "--route", "default"])
        #expect(r.status == 0, "\(r.stderr)")
        let plugin = dir + "/bin/mycelium-cni"
        #expect(FileManager.default.isExecutableFile(atPath: plugin))
        let installed = try Data(contentsOf: URL(fileURLWithPath: plugin))
        let original = try Data(contentsOf: Self.binary.deletingLastPathComponent().appendingPathComponent("mycelium-cni"))
        #expect(installed == original)
        let conflist = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/net.d/10-mycelium.conflist"))) as? [String: Any]
        let plugins = conflist?["plugins"] as? [[String: Any]]
        #expect(conflist?["cniVersion"] as? String == "1.0.0" && conflist?["name"] as? String == "mycelium")
        #expect(plugins?.first?["type"] as? String == "mycelium-cni" && plugins?.first?["socket"] as? String == "/run/x.sock")
        #expect(plugins?.first?["route"] as? String == "default")
        #expect(try String(contentsOfFile: dir + "/net.d/05-other.conflist", encoding: .utf8) == "{\"other\": true}")
        let listing = try FileManager.default.contentsOfDirectory(atPath: dir + "/net.d").sorted()
        #expect(listing == ["05-other.conflist", "10-mycelium.conflist"], "no temporary files left")
        for bad in [["--route", "sideways"], ["--mtu", "9000"], ["--plugin", dir + "/missing"]] {
            let r = try Self.run(["install-cni", "--bin-dir", dir + "/bin2", "--conf-dir", dir + "/net2"] + bad)
            #expect(r.status != 0 && !r.stderr.isEmpty, "\(bad)")
        }
    }

    @Test("install-cni --mode chained appends our plugin to the network in use, under a name that sorts first")
    func installCNIChained() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let conf = dir + "/net.d"
        try FileManager.default.createDirectory(atPath: conf, withIntermediateDirectories: true)
        let flannel = "{\"cniVersion\":\"0.3.1\",\"name\":\"cbr0\",\"plugins\":[{\"type\":\"flannel\",\"delegate\":{\"isDefaultGateway\":true}},"
            + "{\"type\":\"portmap\",\"capabilities\":{\"portMappings\":true}}]}"
        try flannel.write(toFile: conf + "/10-flannel.conflist", atomically: true, encoding: .utf8)
        try "{}".write(toFile: conf + "/99-later.conflist", atomically: true, encoding: .utf8)
        let install = ["install-cni", "--mode", "chained", "--bin-dir", dir + "/bin", "--conf-dir", conf, "--cni-socket", "/run/x.sock"]
        let r = try Self.run(install)
        #expect(r.status == 0 && r.stdout.contains("chained after 10-flannel.conflist"), "\(r.stdout) \(r.stderr)")
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: conf + "/00-mycelium.conflist"))) as? [String: Any]
        #expect(written?["name"] as? String == "cbr0" && written?["cniVersion"] as? String == "0.3.1", "the network keeps its name and version")
        let types = (written?["plugins"] as? [[String: Any]])?.compactMap { $0["type"] as? String }
        #expect(types == ["flannel", "portmap", "mycelium-cni"])
        #expect(((written?["plugins"] as? [[String: Any]])?.first?["delegate"] as? [String: Any])?["isDefaultGateway"] as? Bool == true)
        #expect(try String(contentsOfFile: conf + "/10-flannel.conflist", encoding: .utf8) == flannel, "the other CNI's file is untouched")
        // Re-running (a restarted init container) chains onto the same source, not onto our own file.
        #expect(try Self.run(install).status == 0)
        let again = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: conf + "/00-mycelium.conflist"))) as? [String: Any]
        #expect((again?["plugins"] as? [[String: Any]])?.count == 3)

        // Nothing to chain onto, a source that sorts first, a chain that already has us, a bad mode.
        let empty = dir + "/empty"
        let none = try Self.run(["install-cni", "--mode", "chained", "--bin-dir", dir + "/bin", "--conf-dir", empty])
        #expect(none.status != 0 && none.stderr.contains("no other network's conflist"), "\(none.stderr)")
        try "{\"cniVersion\":\"1.0.0\",\"name\":\"a\",\"plugins\":[{\"type\":\"ptp\"}]}".write(toFile: conf + "/00-aaa.conflist", atomically: true, encoding: .utf8)
        let order = try Self.run(install)
        #expect(order.status != 0 && order.stderr.contains("would not sort before 00-aaa.conflist"), "\(order.stderr)")
        let renamed = try Self.run(install + ["--conflist-name", "0-mycelium.conflist"])
        #expect(renamed.status == 0, "\(renamed.stderr)")
        try "{\"cniVersion\":\"1.0.0\",\"name\":\"a\",\"plugins\":[{\"type\":\"mycelium-cni\"}]}".write(toFile: conf + "/00-aaa.conflist", atomically: true, encoding: .utf8)
        let twice = try Self.run(install + ["--conflist-name", "0-mycelium.conflist"])
        #expect(twice.status != 0 && twice.stderr.contains("already chains mycelium-cni"), "\(twice.stderr)")
        #expect(try Self.run(install + ["--mode", "sideways"]).status != 0)
    }

    @Test("--version prints the version")
    func version() throws {
        let r = try Self.run(["--version"])
        #expect(r.status == 0)
        #expect(!r.stdout.isEmpty)
    }
}

/// Bad configuration fails at start-up with one line naming the option.
@Suite struct NodeConfigurationTests {
    @Test("invalid values name their flag and variable", arguments: [
        (["--tcp-listen-port", "abc"], [String: String](), "--tcp-listen-port"),
        ([], ["MYCELIUM_TCP_LISTEN_PORT": "70000"], "MYCELIUM_TCP_LISTEN_PORT"),
        (["--peers", "udp://1.2.3.4:1"], [:], "--peers"),
        ([], ["MYCELIUM_PEERS": "tcp://1.2.3.4"], "MYCELIUM_PEERS"),
        (["--peers", "quic://[::1]:9651", "--disable-quic"], [:], "QUIC is disabled"),
        (["--peers", "quic://peer.example:9651"], [:], "need an IP address"),
        (["--peers", "tcp://1.2.3.4:1?key=12ab"], [:], "key=<64 hex digits>"),
        ([], ["MYCELIUM_PEERS": "quic://[::1]:1?pin=\(String(repeating: "0", count: 64))"], "MYCELIUM_PEERS"),
        (["--quic-listen-port", "0"], [:], "--quic-listen-port"),
        ([], ["MYCELIUM_QUIC_LISTEN_PORT": "udp"], "MYCELIUM_QUIC_LISTEN_PORT"),
        ([], ["MYCELIUM_DISABLE_QUIC": "perhaps"], "MYCELIUM_DISABLE_QUIC"),
        (["--firewall-mark", "banana"], [:], "--firewall-mark"),
        (["--firewall-mark=0"], [:], "--firewall-mark"),
        ([], ["MYCELIUM_NO_TUN": "maybe"], "MYCELIUM_NO_TUN"),
        (["--tun-offload", "fast"], [:], "--tun-offload"),
        ([], ["MYCELIUM_TUN_OFFLOAD": "2"], "MYCELIUM_TUN_OFFLOAD"),
        (["--sessions", "maybe"], [:], "--sessions"),
        ([], ["MYCELIUM_REQUIRE_SESSIONS": "yes please"], "MYCELIUM_REQUIRE_SESSIONS"),
        (["--require-sessions", "--sessions", "false"], [:], "--require-sessions"),
        (["--tun-name", "a/b"], [:], "--tun-name"),
        (["--api-addr", "localhost"], [:], "--api-addr"),
        ([], ["MYCELIUM_API_ADDR": "1.2.3.4:99999"], "MYCELIUM_API_ADDR"),
        (["--metrics-api-address", "[::1]"], [:], "--metrics-api-address"),
        (["--metrics-api-address", "127.0.0.1:8989"], [:], "overlaps --api-addr"),
        (["--peer-dns", "a..b"], [:], "--peer-dns"),
        ([], ["MYCELIUM_PEER_DNS": "bad/name"], "MYCELIUM_PEER_DNS"),
        (["--topic-config", "/nonexistent/topics.toml"], [:], "--topic-config"),
        (["--jsonrpc-addr", "8990"], [:], "--jsonrpc-addr"),
        (["--jsonrpc-addr", "127.0.0.1:8989"], [:], "overlaps --api-addr"),
        (["--cni-conflist", "/etc/cni/net.d/10-m.conflist"], [:], "add --cni"),
        (["--cni", "--cni-conflist", "net.d/10-m.conflist"], [:], "--cni-conflist"),
        (["--cni", "--cni-mtu", "9000", "--cni-conflist", "/a/10-m.conflist"], [:], "--cni-mtu"),
        (["--cni", "--cni-mtu", "1300"], [:], "add --cni-conflist"),
        (["--cni", "--cni-conflist", "/a/10-m.conflist"], ["MYCELIUM_CNI_MODE": "sideways"], "MYCELIUM_CNI_MODE"),
        (["--cni", "--cni-conflist", "/a/10-m.conflist"], ["MYCELIUM_CNI_ROUTE": "nowhere"], "MYCELIUM_CNI_ROUTE"),
    ])
    func invalid(args: [String], env: [String: String], mentions: String) throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try CLITests.run(args + ["-k", dir + "/key"], env: env)
        #expect(r.status != 0)
        #expect(r.stderr.contains(mentions), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/key"), "nothing is created when the configuration is bad")
    }

    @Test("an HTTP port in use fails start-up in one line naming its option, before the key file is made")
    func portInUse() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A listener of ours on a loopback port the kernel picks.
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && getsockname(fd, raw, &length) == 0 && listen(fd, 1) == 0
            }
        }
        try #require(bound)
        let port = UInt16(bigEndian: address.sin_port)
        let r = try CLITests.run(["--no-tun", "--jsonrpc-addr", "127.0.0.1:\(port)", "-k", dir + "/key"])
        #expect(r.status != 0 && r.stderr.contains("cannot serve --jsonrpc-addr 127.0.0.1:\(port)"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/key"))
    }

    @Test("a peer pinning this node's own key is refused in one line")
    func ownKey() throws {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try CLITests.run(["generate-keys", "-k", dir + "/key"]).status == 0)
        let inspect = try CLITests.run(["inspect", "--json", "-k", dir + "/key"])
        let key = try #require((try JSONSerialization.jsonObject(with: Data(inspect.stdout.utf8)) as? [String: String])?["publicKey"])
        let r = try CLITests.run(["--no-tun", "--peers", "tcp://[::1]:1?key=\(key)", "-k", dir + "/key"])
        #expect(r.status != 0 && r.stderr.contains("pins this node's own key"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one line: \(r.stderr)")
    }
}

/// Flag > environment > config file > default, observed through `mycelium show-config`.
@Suite struct ConfigPrecedenceTests {
    static func show(_ args: [String], env: [String: String] = [:], file: String? = nil) throws -> (CLITests.Result, [String: Any]) {
        let dir = try CLITests.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var extra: [String] = []
        if let file {
            try file.write(toFile: dir + "/mycelium.toml", atomically: true, encoding: .utf8)
            extra = ["-c", dir + "/mycelium.toml"]
        }
        var environment = env
        environment["XDG_CONFIG_HOME"] = dir + "/nothing-here"
        let r = try CLITests.run(["show-config"] + extra + args, env: environment)
        let json = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        return (r, json)
    }

    @Test("defaults")
    func defaults() throws {
        let (r, json) = try Self.show([])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(json["tcpListenPort"] as? Int == 9651 && json["tunName"] as? String == "mycelium")
        #expect(json["noTun"] as? Bool == false && json["firewallMark"] is NSNull)
        #expect(json["apiAddr"] as? String == "127.0.0.1:8989" && json["metricsApiAddress"] is NSNull)
    }

    @Test("the file is read; the environment beats it; a flag beats both")
    func precedence() throws {
        let file = "tcp_listen_port = 1111\ntun_name = \"fromfile\"\npeers = [\"tcp://10.0.0.1:9651\"]\nno_tun = true\njsonrpc_addr = \"127.0.0.1:8991\"\n"
            + "update_workers = 4\n"
            + "api_addr = \"127.0.0.1:1111\"\nmetrics_api_address = \"[::]:9100\"\n"
        let (r1, fromFile) = try Self.show([], file: file)
        #expect(r1.status == 0, "\(r1.stderr)")
        #expect(fromFile["tcpListenPort"] as? Int == 1111 && fromFile["tunName"] as? String == "fromfile")
        #expect(fromFile["peers"] as? [String] == ["tcp://10.0.0.1:9651"] && fromFile["noTun"] as? Bool == true)
        #expect(fromFile["ignoredConfigKeys"] as? [String] == ["update_workers"])
        #expect(fromFile["jsonrpcAddr"] as? String == "127.0.0.1:8991")
        #expect(fromFile["apiAddr"] as? String == "127.0.0.1:1111" && fromFile["metricsApiAddress"] as? String == "[::]:9100")

        let (_, fromEnv) = try Self.show([], env: ["MYCELIUM_TCP_LISTEN_PORT": "2222", "MYCELIUM_PEERS": "tcp://10.0.0.2:1 tcp://10.0.0.3:2"], file: file)
        #expect(fromEnv["tcpListenPort"] as? Int == 2222 && fromEnv["tunName"] as? String == "fromfile")
        #expect(fromEnv["peers"] as? [String] == ["tcp://10.0.0.2:1", "tcp://10.0.0.3:2"])
        let (_, apiFromEnv) = try Self.show([], env: ["MYCELIUM_API_ADDR": "[::1]:2222"], file: file)
        #expect(apiFromEnv["apiAddr"] as? String == "[::1]:2222")
        let (_, apiFromFlag) = try Self.show(["--api-addr", "127.0.0.1:3333"], env: ["MYCELIUM_API_ADDR": "[::1]:2222"], file: file)
        #expect(apiFromFlag["apiAddr"] as? String == "127.0.0.1:3333")

        let (_, fromFlag) = try Self.show(["-t", "3333", "--peers", "tcp://10.0.0.9:9"], env: ["MYCELIUM_TCP_LISTEN_PORT": "2222"], file: file)
        #expect(fromFlag["tcpListenPort"] as? Int == 3333)
        #expect(fromFlag["peers"] as? [String] == ["tcp://10.0.0.9:9"])
    }

    @Test("bad files fail in one line naming the file and the key")
    func badFiles() throws {
        let (unknown, _) = try Self.show([], file: "tcp_listen_prot = 1\n")
        #expect(unknown.status != 0 && unknown.stderr.contains("unknown key 'tcp_listen_prot'"), "\(unknown.stderr)")
        let (badType, _) = try Self.show([], file: "no_tun = \"yes\"\n")
        #expect(badType.status != 0 && badType.stderr.contains("no_tun") && badType.stderr.contains("true or false"), "\(badType.stderr)")
        let (offloadOff, offloadJSON) = try Self.show([], file: "tun_offload = false\n")
        #expect(offloadOff.status == 0 && offloadJSON["tunOffload"] as? Bool == false, "\(offloadOff.stderr)")
        let (strict, strictJSON) = try Self.show([], file: "require_sessions = true\nsessions = true\n")
        #expect(strict.status == 0 && strictJSON["requireSessions"] as? Bool == true, "\(strict.stderr)")
        let (badOffload, _) = try Self.show([], file: "tun_offload = 1\n")
        #expect(badOffload.status != 0 && badOffload.stderr.contains("tun_offload"), "\(badOffload.stderr)")
        let (syntax, _) = try Self.show([], file: "peers = [\n")
        #expect(syntax.status != 0 && syntax.stderr.contains("line"), "\(syntax.stderr)")
        for r in [unknown, badType, syntax] { #expect(r.stderr.split(separator: "\n").count == 1, "\(r.stderr)") }
        let missing = try CLITests.run(["show-config", "-c", "/nonexistent/mycelium.toml"])
        #expect(missing.status != 0 && missing.stderr.contains("/nonexistent/mycelium.toml"))
    }
}
