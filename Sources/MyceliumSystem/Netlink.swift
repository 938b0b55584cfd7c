#if canImport(Glibc)
import Glibc
#endif
import CNetlink
public import MyceliumCore

/// Route netlink through libnl: links, addresses, routes and policy rules.
///
/// A socket is bound to the network namespace of the thread that opened it, so to configure a
/// namespace open the `Netlink` inside `NetworkNamespace.run` and use it from anywhere. Not
/// thread-safe: one owner at a time.
public final class Netlink {
    private let socket: OpaquePointer

    /// The kernel's main routing table (RT_TABLE_MAIN).
    public static let mainTable: UInt32 = 254

    public init() throws(SystemError) {
        guard let sk = nl_socket_alloc() else { throw SystemError("allocate netlink socket", errno: ENOMEM) }
        let rc = nl_connect(sk, NETLINK_ROUTE)
        guard rc == 0 else {
            nl_socket_free(sk)
            throw SystemError("connect netlink socket", netlink: rc)
        }
        socket = sk
    }

    deinit { nl_socket_free(socket) }

    // MARK: links

    /// The interface index of `name`.
    public func interfaceIndex(_ name: String) throws(SystemError) -> Int32 {
        var link: OpaquePointer?
        let rc = rtnl_link_get_kernel(socket, 0, name, &link)
        guard rc == 0, let link else { throw SystemError("find link \(name)", netlink: rc) }
        defer { rtnl_link_put(link) }
        return rtnl_link_get_ifindex(link)
    }

    /// Brings a link up (or down) and optionally sets its MTU.
    public func setLink(_ name: String, up: Bool, mtu: UInt32? = nil) throws(SystemError) {
        var link: OpaquePointer?
        var rc = rtnl_link_get_kernel(socket, 0, name, &link)
        guard rc == 0, let link else { throw SystemError("find link \(name)", netlink: rc) }
        defer { rtnl_link_put(link) }
        guard let change = rtnl_link_alloc() else { throw SystemError("allocate link", errno: ENOMEM) }
        defer { rtnl_link_put(change) }
        if up { rtnl_link_set_flags(change, UInt32(IFF_UP)) } else { rtnl_link_unset_flags(change, UInt32(IFF_UP)) }
        if let mtu { rtnl_link_set_mtu(change, mtu) }
        rc = rtnl_link_change(socket, link, change, 0)
        guard rc == 0 else { throw SystemError("configure link \(name)", netlink: rc) }
    }

    // MARK: addresses

    /// Adds `address/prefixLength` to a link without duplicate address detection (a TUN or veth
    /// address is ours alone; DAD would only delay it). An address already present is fine.
    public func addAddress(_ address: IPv6Address, prefixLength: UInt8, interface ifindex: Int32) throws(SystemError) {
        guard let addr = rtnl_addr_alloc() else { throw SystemError("allocate address", errno: ENOMEM) }
        defer { rtnl_addr_put(addr) }
        let local = try Self.address(address, prefixLength: prefixLength)
        defer { nl_addr_put(local) }
        rtnl_addr_set_ifindex(addr, ifindex)
        rtnl_addr_set_family(addr, AF_INET6)
        _ = rtnl_addr_set_local(addr, local)
        rtnl_addr_set_prefixlen(addr, Int32(prefixLength))
        rtnl_addr_set_flags(addr, UInt32(IFA_F_NODAD))
        let rc = rtnl_addr_add(socket, addr, 0)
        guard rc == 0 || rc == -NLE_EXIST else { throw SystemError("add address \(address)/\(prefixLength)", netlink: rc) }
    }

    // MARK: routes

    public enum RouteKind: Sendable {
        /// Through an interface.
        case device(Int32)
        /// Rejected with "no route to host": nothing matching is ever sent.
        case unreachable
    }

    /// Adds (or replaces) an IPv6 route in `table`.
    public func replaceRoute(_ destination: Subnet, _ kind: RouteKind, table: UInt32 = Netlink.mainTable) throws(SystemError) {
        let route = try Self.route(destination, kind, table: table)
        defer { rtnl_route_put(route) }
        let rc = rtnl_route_add(socket, route, NLM_F_CREATE | NLM_F_REPLACE)
        guard rc == 0 else { throw SystemError("add route \(destination) table \(table)", netlink: rc) }
    }

    /// Removes a route; one that is already gone is fine.
    public func deleteRoute(_ destination: Subnet, _ kind: RouteKind, table: UInt32 = Netlink.mainTable) throws(SystemError) {
        let route = try Self.route(destination, kind, table: table)
        defer { rtnl_route_put(route) }
        let rc = rtnl_route_delete(socket, route, 0)
        guard rc == 0 || rc == -NLE_OBJ_NOTFOUND else { throw SystemError("delete route \(destination) table \(table)", netlink: rc) }
    }

    // MARK: policy rules

    /// An IPv6 rule "fwmark `mark` lookup `table`" at `priority`.
    public struct MarkRule: Hashable, Sendable {
        public var mark: UInt32
        public var table: UInt32
        public var priority: UInt32

        public init(mark: UInt32, table: UInt32, priority: UInt32) {
            self.mark = mark
            self.table = table
            self.priority = priority
        }
    }

    /// Installs the rule, replacing a leftover identical one (rules outlive the process that
    /// made them, so a crashed node must not block its successor).
    public func replaceRule(_ rule: MarkRule) throws(SystemError) {
        try deleteRule(rule)
        let r = try Self.rule(rule)
        defer { rtnl_rule_put(r) }
        let rc = rtnl_rule_add(socket, r, NLM_F_CREATE | NLM_F_EXCL)
        guard rc == 0 else { throw SystemError("add rule fwmark \(rule.mark) table \(rule.table)", netlink: rc) }
    }

    /// Removes the rule if present.
    public func deleteRule(_ rule: MarkRule) throws(SystemError) {
        let r = try Self.rule(rule)
        defer { rtnl_rule_put(r) }
        // Delete every copy (older versions may have left more than one).
        for _ in 0..<16 {
            let rc = rtnl_rule_delete(socket, r, 0)
            if rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NOADDR || rc == -NLE_FAILURE { return }
            guard rc == 0 else { throw SystemError("delete rule fwmark \(rule.mark) table \(rule.table)", netlink: rc) }
        }
    }

    // MARK: helpers

    private static func address(_ a: IPv6Address, prefixLength: UInt8) throws(SystemError) -> OpaquePointer {
        let bytes = a.bytes
        let built = bytes.withUnsafeBytes { nl_addr_build(AF_INET6, UnsafeMutableRawPointer(mutating: $0.baseAddress), 16) }
        guard let built else { throw SystemError("build address \(a)", errno: ENOMEM) }
        nl_addr_set_prefixlen(built, Int32(prefixLength))
        return built
    }

    private static func route(_ destination: Subnet, _ kind: RouteKind, table: UInt32) throws(SystemError) -> OpaquePointer {
        guard let v6 = destination.ipv6 else { throw SystemError("route \(destination)", errno: EAFNOSUPPORT) }
        guard let route = rtnl_route_alloc() else { throw SystemError("allocate route", errno: ENOMEM) }
        let dst = try address(v6, prefixLength: destination.prefixLength)
        defer { nl_addr_put(dst) }
        rtnl_route_set_family(route, UInt8(AF_INET6))
        _ = rtnl_route_set_dst(route, dst)
        rtnl_route_set_table(route, table)
        rtnl_route_set_protocol(route, UInt8(RTPROT_STATIC))
        switch kind {
        case let .device(ifindex):
            rtnl_route_set_type(route, UInt8(RTN_UNICAST))
            guard let hop = rtnl_route_nh_alloc() else {
                rtnl_route_put(route)
                throw SystemError("allocate next hop", errno: ENOMEM)
            }
            rtnl_route_nh_set_ifindex(hop, ifindex)
            rtnl_route_add_nexthop(route, hop)
        case .unreachable:
            rtnl_route_set_type(route, UInt8(RTN_UNREACHABLE))
        }
        return route
    }

    private static func rule(_ rule: MarkRule) throws(SystemError) -> OpaquePointer {
        guard let r = rtnl_rule_alloc() else { throw SystemError("allocate rule", errno: ENOMEM) }
        rtnl_rule_set_family(r, AF_INET6)
        rtnl_rule_set_mark(r, rule.mark)
        rtnl_rule_set_mask(r, 0xFFFF_FFFF)
        rtnl_rule_set_action(r, UInt8(FR_ACT_TO_TBL))
        rtnl_rule_set_table(r, rule.table)
        rtnl_rule_set_prio(r, rule.priority)
        return r
    }
}
