import Foundation
import MyceliumCNI
import MyceliumJSON
import MyceliumTesting
import Testing

/// The CNI protocol of the plugin, in-process: every verb × spec version, every error case,
/// with the agent replaced by a closure.
@Suite struct PluginProtocolTests {
    static let attachment = Attachment(
        key: .init(containerID: "c1", ifname: "eth0"), hostInterface: "myc01020304", hostMac: "aa:bb:cc:dd:ee:01",
        interface: "eth0", mac: "aa:bb:cc:dd:ee:02", sandbox: "/var/run/netns/c1", mtu: 1400,
        address: "4a1:2b3c:4d5e:6f70:1:2:3:4/128", gateway: "fe80::1", routes: ["400::/7"])

    static func env(_ command: String, netns: Bool = true) -> [String: String] {
        var e = ["CNI_COMMAND": command, "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"]
        if netns { e["CNI_NETNS"] = "/var/run/netns/c1" }
        return e
    }

    static func config(_ version: String?, extra: String = "") -> [UInt8] {
        let v = version.map { "\"cniVersion\":\"\($0)\"," } ?? ""
        return Array("{\(v)\"name\":\"mycelium\",\"type\":\"mycelium-cni\"\(extra)}".utf8)
    }

    /// Runs the plugin; the agent answers `reply` and the request is recorded.
    static func run(_ env: [String: String], _ stdin: [UInt8], reply: AgentReply = .attachment(attachment),
                    agentUp: Bool = true) -> (Plugin.Output, AgentRequest?) {
        var seen: AgentRequest?
        let output = Plugin.run(environment: env, stdin: stdin) { _, request throws(CNIError) in
            seen = request
            guard agentUp else { throw CNIError(CNIError.tryAgainLater, "not reachable") }
            return reply
        }
        return (output, seen)
    }

    /// The plugin binary exec'd as a runtime does: only `env` in its environment, `stdin` piped.
    static func exec(_ env: [String: String], _ stdin: [UInt8]) throws -> Plugin.Output {
        let r = try Shell.exec(Shell.product("mycelium-cni"), environment: env, stdin: stdin)
        return Plugin.Output(stdout: r.stdout, stderr: r.stderr, status: r.status)
    }

    /// The binary answers exactly as the in-process model (no agent is reached in these cases:
    /// the socket points nowhere).
    static func expectBinaryAgrees(_ env: [String: String], _ stdin: [UInt8], _ model: Plugin.Output) throws {
        let real = try exec(env, stdin)
        #expect(real.stdout == model.stdout && real.status == model.status, "binary: \(real) model: \(model)")
    }

    static func errorCode(_ output: Plugin.Output) -> Int? {
        (try? JSON(parsing: output.stdout)).flatMap { CNIError(json: $0)?.code }
    }

    @Test("ADD returns the result in the request's version, with IP version fields before 1.0.0",
          arguments: CNIVersion.supported)
    func add(version: String) throws {
        let (output, request) = Self.run(Self.env("ADD"), Self.config(version))
        #expect(output.status == 0, "\(output)")
        let result = try JSON(parsing: output.stdout)
        #expect(result["cniVersion"]?.string == version)
        let ip = result["ips"]?.array?.first
        #expect(ip?["address"]?.string == Self.attachment.address)
        #expect(ip?["interface"]?.int64 == 1)
        #expect((ip?["version"]?.string == "6") == !CNIVersion.isAtLeast(version, "1.0.0"))
        #expect(result["interfaces"]?.array?.last?["sandbox"]?.string == "/var/run/netns/c1")
        #expect((result["interfaces"]?.array?.last?["mtu"] != nil) == (version == "1.1.0"), "mtu in interfaces is 1.1.0")
        #expect(result["routes"]?.array?.first?["dst"]?.string == "400::/7")
        #expect(request?.interface == "eth0" && request?.mtu == 1400 && request?.defaultRoute == false)
        #expect(output.stderr.isEmpty)
    }

    @Test("chained: the previous result passes through and our interface is added beside eth0")
    func chained() throws {
        let prev = ",\"prevResult\":{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"cni0\"},{\"name\":\"eth0\",\"sandbox\":\"/var/run/netns/c1\"}],"
            + "\"ips\":[{\"interface\":1,\"address\":\"10.1.0.5/24\",\"gateway\":\"10.1.0.1\"}],\"routes\":[{\"dst\":\"0.0.0.0/0\"}],"
            + "\"dns\":{\"nameservers\":[\"10.1.0.10\"]}}"
        var attachment = Self.attachment
        attachment.interface = "myc0"
        let (output, request) = Self.run(Self.env("ADD"), Self.config("1.0.0", extra: prev), reply: .attachment(attachment))
        #expect(request?.interface == "myc0", "chained mode uses its own interface name")
        let result = try JSON(parsing: output.stdout)
        let names = result["interfaces"]?.array?.compactMap { $0["name"]?.string }
        #expect(names == ["cni0", "eth0", "myc01020304", "myc0"])
        let ips = result["ips"]?.array ?? []
        #expect(ips.count == 2 && ips[0]["address"]?.string == "10.1.0.5/24" && ips[1]["interface"]?.int64 == 3)
        #expect(result["routes"]?.array?.count == 2)
        #expect(result["dns"]?["nameservers"]?.array?.first?.string == "10.1.0.10")
    }

    @Test("DEL, CHECK, STATUS and GC print nothing and succeed when the agent agrees", arguments: [
        ("DEL", "0.3.0"), ("DEL", "1.1.0"), ("CHECK", "0.4.0"), ("CHECK", "1.0.0"), ("STATUS", "1.1.0"), ("GC", "1.1.0"),
    ])
    func quietVerbs(command: String, version: String) {
        let (output, request) = Self.run(Self.env(command), Self.config(version), reply: .ok)
        #expect(output == Plugin.Output(stdout: "", stderr: "", status: 0))
        #expect(request?.command.rawValue == command)
    }

    @Test("version gates: CHECK needs 0.4.0, STATUS and GC need 1.1.0, unknown versions are refused (code 1)", arguments: [
        ("CHECK", "0.3.1"), ("STATUS", "1.0.0"), ("GC", "0.4.0"), ("ADD", "0.2.0"), ("ADD", "2.0.0"), ("ADD", nil),
    ] as [(String, String?)])
    func versionGates(command: String, version: String?) throws {
        let (output, request) = Self.run(Self.env(command), Self.config(version), reply: .ok)
        #expect(Self.errorCode(output) == 1 && output.status == 1, "\(output)")
        #expect(request == nil, "the agent is not asked")
        try Self.expectBinaryAgrees(Self.env(command), Self.config(version), output)
    }

    @Test("VERSION lists the supported versions and echoes the request's, stdin or not")
    func version() throws {
        for stdin in [Self.config("0.4.0"), []] {
            let (output, _) = Self.run(["CNI_COMMAND": "VERSION"], stdin)
            try Self.expectBinaryAgrees(["CNI_COMMAND": "VERSION"], stdin, output)
            let json = try JSON(parsing: output.stdout)
            #expect(json["supportedVersions"]?.array?.compactMap(\.string) == CNIVersion.supported)
            #expect(json["cniVersion"]?.string == (stdin.isEmpty ? CNIVersion.latest : "0.4.0"))
        }
    }

    @Test("missing environment: code 4 naming every missing variable", arguments: [
        ("ADD", [String](), "[CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH]"),
        ("DEL", ["CNI_CONTAINERID"], "[CNI_IFNAME,CNI_PATH]"),
        ("CHECK", ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"], "[CNI_NETNS]"),
        ("GC", [], "[CNI_PATH]"),
    ])
    func missingEnvironment(command: String, present: [String], listed: String) throws {
        var env = ["CNI_COMMAND": command]
        for name in present { env[name] = Self.env("ADD")[name] }
        let (output, _) = Self.run(env, Self.config("1.1.0"))
        try Self.expectBinaryAgrees(env, Self.config("1.1.0"), output)
        #expect(Self.errorCode(output) == 4)
        #expect(output.stdout.contains("required env variables \(listed) missing"), "\(output.stdout)")
    }

    @Test("bad environment values and bad configuration get the spec's codes", arguments: [
        (["CNI_COMMAND": "FROB"], "{}", 4),
        (["CNI_CONTAINERID": "-bad id"], "", 4),
        (["CNI_IFNAME": "a-very-long-interface"], "", 4),
        (["CNI_IFNAME": "eth/0"], "", 4),
        (["CNI_IFNAME": ".."], "", 4),
        ([:], "{not json", 6),
        ([:], "[1,2]", 6),
        ([:], "{\"cniVersion\":\"1.0.0\"}", 7),
        ([:], "{\"cniVersion\":\"1.0.0\",\"name\":\"bad name!\"}", 7),
        ([:], "{\"cniVersion\":\"1.0.0\",\"name\":\"m\",\"mtu\":9000}", 7),
        ([:], "{\"cniVersion\":\"1.0.0\",\"name\":\"m\",\"route\":\"sideways\"}", 7),
        ([:], "{\"cniVersion\":\"1.0.0\",\"name\":\"m\",\"socket\":\"relative.sock\"}", 7),
        ([:], "{\"cniVersion\":\"1.0.0\",\"name\":\"m\",\"interface\":\"has space\"}", 7),
    ] as [([String: String], String, Int)])
    func badInput(overrides: [String: String], stdin: String, code: Int) throws {
        var env = Self.env("ADD")
        env.merge(overrides) { $1 }
        let (output, request) = Self.run(env, stdin.isEmpty ? Self.config("1.0.0") : Array(stdin.utf8))
        try Self.expectBinaryAgrees(env, stdin.isEmpty ? Self.config("1.0.0") : Array(stdin.utf8), output)
        #expect(Self.errorCode(output) == code, "\(output.stdout)")
        #expect(output.status != 0 && request == nil)
        #expect(output.stdout.split(separator: "\n").count == 1, "one JSON object and nothing else on stdout")
    }

    @Test("an unreachable agent: code 11 (try again) for ADD and DEL, 50 for STATUS")
    func agentDown() throws {
        #expect(Self.errorCode(Self.run(Self.env("ADD"), Self.config("1.0.0"), agentUp: false).0) == 11)
        #expect(Self.errorCode(Self.run(Self.env("DEL"), Self.config("1.0.0"), agentUp: false).0) == 11)
        #expect(Self.errorCode(Self.run(Self.env("STATUS"), Self.config("1.1.0"), agentUp: false).0) == 50)
        // The binary against a socket nobody listens on.
        let nowhere = ",\"socket\":\"/nonexistent/mycelium-test.sock\""
        for (command, version, code) in [("ADD", "1.0.0", 11), ("DEL", "0.3.1", 11), ("CHECK", "0.4.0", 11), ("GC", "1.1.0", 11), ("STATUS", "1.1.0", 50)] {
            let real = try Self.exec(Self.env(command), Self.config(version, extra: nowhere))
            #expect(real.status == 1 && Self.errorCode(real) == code, "\(command): \(real)")
            #expect(real.stdout.split(separator: "\n").count == 1, "only the error object on stdout")
        }
    }

    @Test("agent errors reach stdout with their code and the request's version")
    func agentError() throws {
        let (output, _) = Self.run(Self.env("ADD"), Self.config("0.4.0"),
                                   reply: .failure(CNIError(CNIError.attachmentExists, "container c1 already has eth0")))
        let json = try JSON(parsing: output.stdout)
        #expect(json["code"]?.int64 == 100 && json["cniVersion"]?.string == "0.4.0")
    }

    @Test("GC sends the valid attachments from either key, without duplicates")
    func gcKeys() {
        let list = "[{\"containerID\":\"a\",\"ifname\":\"eth0\"},{\"containerID\":\"b\",\"ifname\":\"eth0\"}]"
        let (_, request) = Self.run(Self.env("GC"), Self.config("1.1.0", extra: ",\"cni.dev/attachments\":\(list),\"cni.dev/valid-attachments\":\(list)"),
                                    reply: .ok)
        #expect(request?.validAttachments.map(\.containerID) == ["a", "b"])
    }

    @Test("without CNI_COMMAND the plugin describes itself on stderr and exits 0")
    func about() throws {
        let (output, _) = Self.run([:], [])
        #expect(output.status == 0 && output.stdout.isEmpty && output.stderr.contains("CNI protocol versions"))
        #expect(try Self.exec([:], []) == output)
    }

    @Test("agent messages round-trip")
    func agentMessages() throws {
        let request = AgentRequest(command: .gc, key: .init(containerID: "c", ifname: "eth0"), netns: "", interface: "eth0",
                                   mtu: 1300, defaultRoute: true, validAttachments: [.init(containerID: "x", ifname: "eth1")])
        #expect(try AgentRequest(json: try JSON(parsing: request.json.compact)) == request)
        for reply in [AgentReply.ok, .attachment(Self.attachment), .failure(CNIError(7, "bad", details: "d"))] {
            #expect(try AgentReply(json: try JSON(parsing: reply.json.compact)) == reply)
        }
    }
}
