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

    /// Packets the kernel dropped on their way out of link `name` (for a TUN device: packets for
    /// the reader that found its queue full).
    public func transmitDrops(of name: String) throws(SystemError) -> UInt64 {
        var link: OpaquePointer?
        let rc = rtnl_link_get_kernel(socket, 0, name, &link)
        guard rc == 0, let link else { throw SystemError("find link \(name)", netlink: rc) }
        defer { rtnl_link_put(link) }
        return rtnl_link_get_stat(link, RTNL_LINK_TX_DROPPED)
    }

    /// Whether a link called `name` exists.
    public func linkExists(_ name: String) -> Bool {
        (try? interfaceIndex(name)) != nil
    }

    /// The link's MAC address as `aa:bb:cc:dd:ee:ff`.
    public func macAddress(of name: String) throws(SystemError) -> String {
        var link: OpaquePointer?
        let rc = rtnl_link_get_kernel(socket, 0, name, &link)
        guard rc == 0, let link else { throw SystemError("find link \(name)", netlink: rc) }
        defer { rtnl_link_put(link) }
        guard let address = rtnl_link_get_addr(link), nl_addr_get_len(address) == 6 else { return "" }
        let bytes = UnsafeRawBufferPointer(start: nl_addr_get_binary_addr(address), count: 6)
        return bytes.map { b in let h = String(b, radix: 16); return h.count == 1 ? "0" + h : h }.joined(separator: ":")
    }

    /// Creates a veth pair: `host` here, `peer` directly inside the namespace `namespaceFD`
    /// refers to (no setns needed), both with `mtu`.
    public func createVeth(host: String, peer: String, namespaceFD: Int32, mtu: UInt32) throws(SystemError) {
        guard let link = rtnl_link_veth_alloc() else { throw SystemError("allocate veth", errno: ENOMEM) }
        defer { rtnl_link_veth_release(link) }
        rtnl_link_set_name(link, host)
        rtnl_link_set_mtu(link, mtu)
        guard let other = rtnl_link_veth_get_peer(link) else { throw SystemError("allocate veth peer", errno: ENOMEM) }
        rtnl_link_set_name(other, peer)
        rtnl_link_set_mtu(other, mtu)
        rtnl_link_set_ns_fd(other, namespaceFD)
        rtnl_link_put(other)
        let rc = rtnl_link_add(socket, link, NLM_F_CREATE | NLM_F_EXCL)
        guard rc == 0 else { throw SystemError("create veth \(host) / \(peer)", netlink: rc) }
    }

    /// Deletes a link (a veth takes its peer with it); false if there was none.
    @discardableResult
    public func deleteLink(_ name: String) throws(SystemError) -> Bool {
        guard let link = rtnl_link_alloc() else { throw SystemError("allocate link", errno: ENOMEM) }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        let rc = rtnl_link_delete(socket, link)
        if rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV { return false }
        guard rc == 0 else { throw SystemError("delete link \(name)", netlink: rc) }
        return true
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

    /// Indexes of the interfaces with a usable IPv6 link-local address: one in fe80::/64 that
    /// has passed duplicate address detection (not tentative, not failed). The kernel sends
    /// nothing from a tentative address, so a beacon on such an interface would go nowhere.
    public func interfacesWithUsableLinkLocal() throws(SystemError) -> Set<UInt32> {
        var cache: OpaquePointer?
        let rc = rtnl_addr_alloc_cache(socket, &cache)
        guard rc == 0, let cache else { throw SystemError("list addresses", netlink: rc) }
        defer { nl_cache_free(cache) }
        var out: Set<UInt32> = []
        var object = nl_cache_get_first(cache)
        while let current = object {
            defer { object = nl_cache_get_next(current) }
            let addr = current
            guard rtnl_addr_get_family(addr) == AF_INET6, let local = rtnl_addr_get_local(addr), nl_addr_get_len(local) == 16 else { continue }
            let bytes = UnsafeRawBufferPointer(start: nl_addr_get_binary_addr(local), count: 16)
            guard bytes.prefix(8).elementsEqual([0xFE, 0x80, 0, 0, 0, 0, 0, 0]) else { continue }
            guard rtnl_addr_get_flags(addr) & UInt32(IFA_F_TENTATIVE | IFA_F_DADFAILED) == 0 else { continue }
            out.insert(UInt32(bitPattern: rtnl_addr_get_ifindex(addr)))
        }
        return out
    }

    // MARK: routes

    public enum RouteKind: Sendable {
        /// Through an interface.
        case device(Int32)
        /// Rejected with "no route to host": nothing matching is ever sent.
        case unreachable
        /// Through a (link-local) gateway on an interface.
        case gateway(IPv6Address, Int32)
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
        case let .gateway(gateway, ifindex):
            rtnl_route_set_type(route, UInt8(RTN_UNICAST))
            guard let hop = rtnl_route_nh_alloc() else {
                rtnl_route_put(route)
                throw SystemError("allocate next hop", errno: ENOMEM)
            }
            let via = try address(gateway, prefixLength: 128)
            defer { nl_addr_put(via) }
            rtnl_route_nh_set_ifindex(hop, ifindex)
            rtnl_route_nh_set_gateway(hop, via)
            rtnl_route_add_nexthop(route, hop)
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
