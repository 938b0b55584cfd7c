#if canImport(Glibc)
import Glibc
#endif
public import MyceliumCore

/// The host's interfaces as `getifaddrs(3)` reports them: flags and IPv6 link-local presence.
public enum NetworkInterfaces {
    public struct Interface: Hashable, Sendable {
        public let name: String
        public let index: UInt32
        public let isUp: Bool
        public let isLoopback: Bool
        public let isPointToPoint: Bool
        public let supportsMulticast: Bool
        /// The interface has an address in fe80::/64.
        public let hasLinkLocal: Bool

        public init(name: String, index: UInt32, isUp: Bool, isLoopback: Bool, isPointToPoint: Bool, supportsMulticast: Bool,
                    hasLinkLocal: Bool) {
            self.name = name
            self.index = index
            self.isUp = isUp
            self.isLoopback = isLoopback
            self.isPointToPoint = isPointToPoint
            self.supportsMulticast = supportsMulticast
            self.hasLinkLocal = hasLinkLocal
        }
    }

    /// Every interface with any address, one entry per name, sorted by name.
    public static func list() -> [Interface] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var flags: [String: UInt32] = [:]
        var linkLocal: Set<String> = []
        var entry = head
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            let name = String(cString: current.pointee.ifa_name)
            flags[name, default: 0] |= current.pointee.ifa_flags
            guard let address = current.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET6) else { continue }
            let isLinkLocal = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                withUnsafeBytes(of: v6.pointee.sin6_addr) { $0.prefix(8).elementsEqual([0xFE, 0x80, 0, 0, 0, 0, 0, 0]) }
            }
            if isLinkLocal { linkLocal.insert(name) }
        }
        return flags.keys.sorted().map { name in
            let f = flags[name]!
            return Interface(name: name, index: if_nametoindex(name), isUp: f & UInt32(IFF_UP) != 0,
                             isLoopback: f & UInt32(IFF_LOOPBACK) != 0,
                             isPointToPoint: f & UInt32(IFF_POINTOPOINT) != 0,
                             supportsMulticast: f & UInt32(IFF_MULTICAST) != 0,
                             hasLinkLocal: linkLocal.contains(name))
        }
    }

    /// Every address of every interface (IPv4 and IPv6), to recognise our own endpoints.
    public static func addresses() -> Set<IPAddress> {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0 else { return [] }
        defer { freeifaddrs(head) }
        var out: Set<IPAddress> = []
        var entry = head
        while let current = entry {
            defer { entry = current.pointee.ifa_next }
            guard let address = current.pointee.ifa_addr else { continue }
            switch Int32(address.pointee.sa_family) {
            case AF_INET:
                _ = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { v4 in
                    out.insert(.v4(IPv4Address(UInt32(bigEndian: v4.pointee.sin_addr.s_addr))))
                }
            case AF_INET6:
                _ = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { v6 in
                    out.insert(.v6(withUnsafeBytes(of: v6.pointee.sin6_addr) { IPv6Address(bytes: $0) }))
                }
            default: break
            }
        }
        return out
    }
}
