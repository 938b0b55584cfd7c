import MyceliumJSON

/// The whole CNI protocol of `mycelium-cni`, without I/O: environment and stdin in; stdout,
/// stderr and exit status out. The agent is reached through `send`.
///
/// Flow: environment (§1.2) → config (§1.4, version gates) → one agent request → result in
/// the request's version, or an error object. Only JSON ever goes to stdout.
public enum Plugin {
    public struct Output: Equatable, Sendable {
        public var stdout: String
        public var stderr: String
        public var status: Int32

        public init(stdout: String, stderr: String, status: Int32) {
            self.stdout = stdout
            self.stderr = stderr
            self.status = status
        }
    }

    public typealias Send = (_ socket: String, _ request: AgentRequest) throws(CNIError) -> AgentReply

    public static let about = "mycelium-cni: containers on the Mycelium overlay, addressed inside this node's /64"

    public static func run(environment: [String: String], stdin: [UInt8], send: Send) -> Output {
        var version: String?
        do throws(CNIError) {
            guard let invocation = try CNIInvocation(environment: environment) else {
                return Output(stdout: "", stderr: "\(about)\nCNI protocol versions supported: \(CNIVersion.supported.joined(separator: ", "))\n", status: 0)
            }
            if invocation.command == .version {
                // stdin is optional here; its version is echoed when readable.
                let asked = (try? JSON(parsing: stdin))?["cniVersion"]?.string ?? CNIVersion.latest
                let body = JSON.object([("cniVersion", .string(asked)),
                                        ("supportedVersions", .array(CNIVersion.supported.map { .string($0) }))])
                return Output(stdout: body.compact + "\n", stderr: "", status: 0)
            }
            let config = try CNIConfig(parsing: stdin)
            version = CNIVersion.supported.contains(config.cniVersion) ? config.cniVersion : nil
            guard CNIVersion.supported.contains(config.cniVersion) else {
                throw CNIError(CNIError.incompatibleVersion, "incompatible CNI versions",
                               details: "config is \"\(config.cniVersion)\", plugin supports \(CNIVersion.supported)")
            }
            switch invocation.command {
            case .check where !CNIVersion.isAtLeast(config.cniVersion, "0.4.0"):
                throw CNIError(CNIError.incompatibleVersion, "config version does not allow CHECK")
            case .status where !CNIVersion.isAtLeast(config.cniVersion, "1.1.0"), .gc where !CNIVersion.isAtLeast(config.cniVersion, "1.1.0"):
                throw CNIError(CNIError.incompatibleVersion, "config version does not allow \(invocation.command.rawValue)")
            default: break
            }
            // After another plugin (prevResult on ADD) the container keeps its interface and we add
            // our own; DEL and CHECK find the interface in the agent's record.
            let chained = config.prevResult != nil && invocation.command == .add
            let request = AgentRequest(
                command: invocation.command, key: Attachment.Key(containerID: invocation.containerID, ifname: invocation.ifname),
                netns: invocation.netns, interface: chained ? config.chainedInterface : invocation.ifname,
                mtu: config.mtu, defaultRoute: config.defaultRoute, validAttachments: config.validAttachments)
            let reply: AgentReply
            do { reply = try send(config.socket, request) } catch {
                // The agent is down or restarting: a runtime retries later; STATUS says "not available".
                if invocation.command == .status {
                    throw CNIError(CNIError.notAvailable, "the mycelium agent is not available", details: error.details.isEmpty ? error.msg : error.details)
                }
                // DEL must succeed when nothing is left to undo; without the agent we cannot know, so retry.
                throw error
            }
            switch (invocation.command, reply) {
            case let (_, .failure(error)):
                throw error
            case let (.add, .attachment(attachment)):
                let result = CNIResult.build(attachment, version: config.cniVersion, prevResult: config.prevResult)
                return Output(stdout: result.compact + "\n", stderr: "", status: 0)
            case (.add, .ok):
                throw CNIError(CNIError.internalError, "the agent did not return the attachment")
            default:
                return Output(stdout: "", stderr: "", status: 0)
            }
        } catch {
            return Output(stdout: error.json(version: version).compact + "\n", stderr: "mycelium-cni: \(error)\n", status: 1)
        }
    }
}
