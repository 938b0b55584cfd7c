public import MyceliumJSON

/// What the plugin and the agent say over the agent's Unix socket: one JSON request line from
/// the plugin, then one JSON reply line from the agent, then the agent closes.
///
/// ```
/// plugin → agent  {"command":"ADD","containerID":"…","ifname":"eth0","netns":"/var/run/netns/x",
///                  "interface":"eth0","mtu":1400,"defaultRoute":false,"validAttachments":[…]}\n
/// agent → plugin  {"attachment":{…}}\n  |  {"ok":true,…}\n  |  {"error":{"code":…,"msg":…}}\n
/// ```
/// The agent owns all privileged work (IPAM, netlink, namespaces); the plugin stays a thin,
/// dependency-free client.
public struct AgentRequest: Equatable, Sendable {
    public var command: CNIInvocation.Command
    public var key: Attachment.Key
    public var netns: String
    /// The interface to create in the container.
    public var interface: String
    public var mtu: Int
    public var defaultRoute: Bool
    public var validAttachments: [Attachment.Key]

    public init(command: CNIInvocation.Command, key: Attachment.Key, netns: String, interface: String, mtu: Int,
                defaultRoute: Bool, validAttachments: [Attachment.Key] = []) {
        self.command = command
        self.key = key
        self.netns = netns
        self.interface = interface
        self.mtu = mtu
        self.defaultRoute = defaultRoute
        self.validAttachments = validAttachments
    }

    public var json: JSON {
        .object([
            ("command", .string(command.rawValue)), ("containerID", .string(key.containerID)), ("ifname", .string(key.ifname)),
            ("netns", .string(netns)), ("interface", .string(interface)), ("mtu", .int(mtu)), ("defaultRoute", .bool(defaultRoute)),
            ("validAttachments", .array(validAttachments.map {
                .object([("containerID", .string($0.containerID)), ("ifname", .string($0.ifname))])
            })),
        ])
    }

    public init(json: JSON) throws(CNIError) {
        guard let text = json["command"]?.string, let command = CNIInvocation.Command(rawValue: text),
              let id = json["containerID"]?.string, let ifname = json["ifname"]?.string else {
            throw CNIError(CNIError.decodeFailure, "malformed agent request")
        }
        // The agent re-checks what the plugin checked: the socket is its own trust boundary
        // (anything that can open it can send any line).
        guard CNIInvocation.isValidIdentifier(id) else { throw CNIError(CNIError.invalidEnvironment, "invalid container ID") }
        if let problem = ifname.isEmpty ? "is empty" : CNIInvocation.interfaceNameProblem(ifname) {
            throw CNIError(CNIError.invalidEnvironment, "invalid CNI_IFNAME", details: "'\(ifname)' \(problem)")
        }
        let interface = json["interface"]?.string ?? ifname
        if let problem = interface.isEmpty ? "is empty" : CNIInvocation.interfaceNameProblem(interface) {
            throw CNIError(CNIError.invalidConfig, "invalid 'interface'", details: "'\(interface)' \(problem)")
        }
        let netns = json["netns"]?.string ?? ""
        guard netns.utf8.count < 4096, !netns.utf8.contains(0) else { throw CNIError(CNIError.invalidEnvironment, "invalid netns path") }
        let mtu = json["mtu"]?.int64 ?? Int64(CNIConfig.maxMTU)
        guard (Int64(CNIConfig.minMTU)...Int64(CNIConfig.maxMTU)).contains(mtu) else {
            throw CNIError(CNIError.invalidConfig, "'mtu' must be a number from \(CNIConfig.minMTU) to \(CNIConfig.maxMTU) (the overlay's MTU)")
        }
        self.command = command
        key = Attachment.Key(containerID: id, ifname: ifname)
        self.netns = netns
        self.interface = interface
        self.mtu = Int(mtu)
        defaultRoute = json["defaultRoute"]?.bool ?? false
        validAttachments = (json["validAttachments"]?.array ?? []).compactMap { item in
            guard let id = item["containerID"]?.string, let ifname = item["ifname"]?.string else { return nil }
            return Attachment.Key(containerID: id, ifname: ifname)
        }
    }
}

public enum AgentReply: Equatable, Sendable {
    case ok
    case attachment(Attachment)
    case failure(CNIError)

    public var json: JSON {
        switch self {
        case .ok: .object([("ok", .bool(true))])
        case let .attachment(a): .object([("attachment", a.json)])
        case let .failure(e): .object([("error", e.json(version: nil))])
        }
    }

    public init(json: JSON) throws(CNIError) {
        if let error = json["error"] {
            guard let e = CNIError(json: error) else { throw CNIError(CNIError.decodeFailure, "malformed agent error") }
            self = .failure(e)
        } else if let a = json["attachment"] {
            guard let attachment = Attachment(json: a) else { throw CNIError(CNIError.decodeFailure, "malformed agent attachment") }
            self = .attachment(attachment)
        } else if json["ok"]?.bool == true {
            self = .ok
        } else {
            throw CNIError(CNIError.decodeFailure, "malformed agent reply")
        }
    }
}
