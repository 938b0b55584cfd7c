/// The protocol parameters a runtime passes in the environment (spec §1.2), validated as the
/// reference `skel` library validates them, so runtimes see the errors they expect.
public struct CNIInvocation: Equatable, Sendable {
    public enum Command: String, Sendable, CaseIterable {
        case add = "ADD", del = "DEL", check = "CHECK", status = "STATUS", gc = "GC", version = "VERSION"
    }

    public var command: Command
    public var containerID: String
    public var netns: String
    public var ifname: String
    public var args: String
    public var path: String

    /// Variables each verb needs (CNI_PATH too, as `skel` demands).
    static func required(for command: Command) -> [String] {
        switch command {
        case .add, .check: ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"]
        case .del: ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"]
        case .gc, .status: ["CNI_PATH"]
        case .version: []
        }
    }

    /// nil when `CNI_COMMAND` is unset (the plugin then only describes itself on stderr).
    public init?(environment env: [String: String]) throws(CNIError) {
        guard let text = env["CNI_COMMAND"] else { return nil }
        guard let command = Command(rawValue: text) else {
            throw CNIError(CNIError.invalidEnvironment, "unknown CNI_COMMAND: \(text)")
        }
        let missing = Self.required(for: command).filter { (env[$0] ?? "").isEmpty }
        guard missing.isEmpty else {
            throw CNIError(CNIError.invalidEnvironment, "required env variables [\(missing.joined(separator: ","))] missing")
        }
        self.command = command
        containerID = env["CNI_CONTAINERID"] ?? ""
        netns = env["CNI_NETNS"] ?? ""
        ifname = env["CNI_IFNAME"] ?? ""
        args = env["CNI_ARGS"] ?? ""
        path = env["CNI_PATH"] ?? ""
        if [.add, .del, .check].contains(command) {
            guard Self.isValidIdentifier(containerID) else {
                throw CNIError(CNIError.invalidEnvironment, "invalid characters in containerID", details: containerID)
            }
            if let problem = Self.interfaceNameProblem(ifname) {
                throw CNIError(CNIError.invalidEnvironment, "invalid CNI_IFNAME", details: "'\(ifname)' \(problem)")
            }
        }
    }

    /// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`, the spec's rule for container IDs and network names.
    public static func isValidIdentifier(_ s: String) -> Bool {
        guard let first = s.utf8.first, isAlnum(first) else { return false }
        return s.utf8.allSatisfy { isAlnum($0) || $0 == 0x5F || $0 == 0x2E || $0 == 0x2D }
    }

    static func isAlnum(_ c: UInt8) -> Bool { (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c) }

    /// Why `name` cannot be a Linux interface name, or nil.
    public static func interfaceNameProblem(_ name: String) -> String? {
        if name.utf8.count > 15 { return "is longer than 15 bytes" }
        if name == "." || name == ".." { return "is not a valid name" }
        if name.utf8.contains(where: { $0 == 0x2F || $0 == 0x3A || $0 == 0x20 || (0x09...0x0D).contains($0) }) {
            return "contains '/', ':' or whitespace"
        }
        return nil
    }
}
