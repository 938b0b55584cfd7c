public import MyceliumJSON

/// The network configuration a runtime writes to the plugin's stdin (spec §1.4), with our keys:
///
/// ```json
/// {"cniVersion": "1.0.0", "name": "mycelium", "type": "mycelium-cni",
///  "socket": "/run/mycelium/cni.sock", "mtu": 1400, "route": "overlay", "interface": "myc0"}
/// ```
/// `route` is `overlay` (a route for 400::/7, the default) or `default` (::/0); `interface`
/// names the second interface in chained mode (default `myc0`); `mtu` is at most the TUN's.
public struct CNIConfig: Sendable {
    public static let defaultSocket = "/run/mycelium/cni.sock"
    public static let defaultChainedInterface = "myc0"
    public static let maxMTU = 1400
    public static let minMTU = 1280

    public var cniVersion: String
    public var name: String
    public var socket: String
    public var mtu: Int
    public var defaultRoute: Bool
    public var chainedInterface: String
    public var prevResult: JSON?
    /// GC: the attachments the runtime still holds, from either key the spec has used.
    public var validAttachments: [Attachment.Key]

    /// Decodes and validates; `cniVersion` is read first so errors can carry it.
    public init(parsing bytes: [UInt8]) throws(CNIError) {
        let json: JSON
        do { json = try JSON(parsing: bytes) } catch {
            throw CNIError(CNIError.decodeFailure, "failed to decode the network configuration", details: "\(error)")
        }
        guard case .object = json else { throw CNIError(CNIError.decodeFailure, "the network configuration is not a JSON object") }
        if let v = json["cniVersion"], v.string == nil {
            throw CNIError(CNIError.decodeFailure, "cniVersion must be a string")
        }
        cniVersion = json["cniVersion"]?.string ?? CNIVersion.implied
        guard let name = json["name"]?.string, !name.isEmpty else {
            throw CNIError(CNIError.invalidConfig, "missing network name")
        }
        guard CNIInvocation.isValidIdentifier(name) else {
            throw CNIError(CNIError.invalidConfig, "invalid network name", details: name)
        }
        self.name = name
        func string(_ key: String, default value: String) throws(CNIError) -> String {
            guard let item = json[key] else { return value }
            guard let s = item.string, !s.isEmpty else { throw CNIError(CNIError.invalidConfig, "'\(key)' must be a non-empty string") }
            return s
        }
        socket = try string("socket", default: Self.defaultSocket)
        guard socket.hasPrefix("/") else { throw CNIError(CNIError.invalidConfig, "'socket' must be an absolute path", details: socket) }
        switch try string("route", default: "overlay") {
        case "overlay": defaultRoute = false
        case "default": defaultRoute = true
        case let other: throw CNIError(CNIError.invalidConfig, "'route' must be \"overlay\" or \"default\"", details: other)
        }
        chainedInterface = try string("interface", default: Self.defaultChainedInterface)
        if let problem = CNIInvocation.interfaceNameProblem(chainedInterface) {
            throw CNIError(CNIError.invalidConfig, "'interface' \(problem)", details: chainedInterface)
        }
        if let item = json["mtu"] {
            guard let n = item.int64, (Int64(Self.minMTU)...Int64(Self.maxMTU)).contains(n) else {
                throw CNIError(CNIError.invalidConfig, "'mtu' must be a number from \(Self.minMTU) to \(Self.maxMTU) (the overlay's MTU)")
            }
            mtu = Int(n)
        } else {
            mtu = Self.maxMTU
        }
        if let prev = json["prevResult"], !prev.isNull {
            guard case .object = prev else { throw CNIError(CNIError.decodeFailure, "prevResult is not a JSON object") }
            prevResult = prev
        }
        validAttachments = []
        for key in ["cni.dev/valid-attachments", "cni.dev/attachments"] {
            guard let list = json[key] else { continue }
            guard let items = list.array else { throw CNIError(CNIError.decodeFailure, "'\(key)' is not a list") }
            for item in items {
                guard let id = item["containerID"]?.string, let ifname = item["ifname"]?.string else {
                    throw CNIError(CNIError.decodeFailure, "'\(key)' entries need containerID and ifname")
                }
                let entry = Attachment.Key(containerID: id, ifname: ifname)
                if !validAttachments.contains(entry) { validAttachments.append(entry) }
            }
        }
    }
}
