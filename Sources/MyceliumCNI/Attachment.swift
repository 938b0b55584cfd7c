public import MyceliumJSON

/// One container interface wired by the agent: what the plugin turns into a CNI result.
public struct Attachment: Equatable, Sendable {
    /// IPAM is keyed by what the runtime knows: (container ID, CNI_IFNAME).
    public struct Key: Hashable, Sendable, Comparable {
        public var containerID: String
        public var ifname: String

        public init(containerID: String, ifname: String) {
            self.containerID = containerID
            self.ifname = ifname
        }

        public static func < (a: Key, b: Key) -> Bool { (a.containerID, a.ifname) < (b.containerID, b.ifname) }
    }

    public var key: Key
    public var hostInterface: String
    public var hostMac: String
    /// The interface in the container: CNI_IFNAME, or the chained interface name.
    public var interface: String
    public var mac: String
    public var sandbox: String
    public var mtu: Int
    /// The container's overlay address (a /128 inside the node's /64), as text.
    public var address: String
    /// The host side's link-local address, the container's next hop.
    public var gateway: String
    /// Destinations routed through the gateway: `400::/7`, or `::/0`.
    public var routes: [String]

    public init(key: Key, hostInterface: String, hostMac: String, interface: String, mac: String, sandbox: String, mtu: Int,
                address: String, gateway: String, routes: [String]) {
        self.key = key
        self.hostInterface = hostInterface
        self.hostMac = hostMac
        self.interface = interface
        self.mac = mac
        self.sandbox = sandbox
        self.mtu = mtu
        self.address = address
        self.gateway = gateway
        self.routes = routes
    }

    public var json: JSON {
        .object([
            ("containerID", .string(key.containerID)), ("ifname", .string(key.ifname)),
            ("hostInterface", .string(hostInterface)), ("hostMac", .string(hostMac)),
            ("interface", .string(interface)), ("mac", .string(mac)), ("sandbox", .string(sandbox)),
            ("mtu", .int(mtu)), ("address", .string(address)), ("gateway", .string(gateway)),
            ("routes", .array(routes.map { .string($0) })),
        ])
    }

    public init?(json: JSON) {
        guard let id = json["containerID"]?.string, let ifname = json["ifname"]?.string,
              let hostInterface = json["hostInterface"]?.string, let interface = json["interface"]?.string,
              let address = json["address"]?.string, let mtu = json["mtu"]?.int64 else { return nil }
        self.init(key: Key(containerID: id, ifname: ifname), hostInterface: hostInterface, hostMac: json["hostMac"]?.string ?? "",
                  interface: interface, mac: json["mac"]?.string ?? "", sandbox: json["sandbox"]?.string ?? "", mtu: Int(mtu),
                  address: address, gateway: json["gateway"]?.string ?? "",
                  routes: json["routes"]?.array?.compactMap(\.string) ?? [])
    }
}
