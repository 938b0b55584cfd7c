#if canImport(Glibc)
import Glibc
#endif
public import MyceliumCNI
public import MyceliumCore
public import MyceliumSystem

/// The kernel side of an attachment, all through libnl:
///
/// ```
///  container netns                         host (the node's netns)
///  ┌──────────────────────────┐            ┌─────────────────────────────────────────┐
///  │ eth0  addr/128 (no DAD)  │◄── veth ──►│ mycXXXXXXXX  fe80::1/64                  │
///  │ 400::/7 via fe80::1      │            │ addr/128 dev mycXXXXXXXX                 │
///  └──────────────────────────┘            │ 400::/7 dev mycelium (TUN), forwarding=1 │
///                                          └─────────────────────────────────────────┘
/// ```
/// The peer is created straight into the container's namespace by file descriptor; the
/// container side is configured with a netlink socket opened on a one-shot thread inside that
/// namespace (`NetworkNamespace.run`), never from a Task. Not thread-safe: the agent calls it
/// from its single worker thread.
public final class ContainerWiring {
    /// Every host-side veth has this link-local address; containers route through it.
    public static let gateway = IPv6Address("fe80::1")!

    private let netlink: Netlink

    public init() throws(SystemError) {
        netlink = try Netlink()
    }

    /// `myc` + 8 hex digits of the key's hash: stable, so a DEL finds it even without a record.
    public static func hostInterfaceName(for key: Attachment.Key) -> String {
        let hash = BLAKE3.hash(Array("\(key.containerID)\u{0}\(key.ifname)".utf8), length: 4)
        return "myc" + hash.map { b in let h = String(b, radix: 16); return h.count == 1 ? "0" + h : h }.joined()
    }

    /// Creates and configures the pair; on any failure nothing is left behind.
    public func attach(_ request: AgentRequest, address: IPv6Address) throws(CNIError) -> Attachment {
        // O_NONBLOCK: a FIFO or device named as the netns must not hang the agent's thread.
        let fd = open(request.netns, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw CNIError(CNIError.unknownContainer, "cannot open the container's network namespace",
                           details: "\(request.netns): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard NetworkNamespace.isNetworkNamespace(fd: fd) else {
            throw CNIError(CNIError.unknownContainer, "the container's network namespace is not visible to the agent",
                           details: "\(request.netns) is not a namespace here; the agent must see the runtime's netns mounts "
                               + "(in a container: mount the netns directory with HostToContainer propagation)")
        }
        guard !NetworkNamespace.isSameNamespace(fd: fd, as: "/proc/self/ns/net") else {
            throw CNIError(CNIError.invalidEnvironment, "the container's network namespace is the host's",
                           details: "\(request.netns) is the namespace the node runs in; a container needs its own")
        }
        let host = Self.hostInterfaceName(for: request.key)
        // A host side left by a crash between wiring and recording is ours to replace.
        if netlink.linkExists(host) { _ = try? netlink.deleteLink(host) }
        do {
            try netlink.createVeth(host: host, peer: request.interface, namespaceFD: fd, mtu: UInt32(request.mtu))
        } catch {
            if error.isExists {
                throw CNIError(CNIError.attachmentExists, "interface \(request.interface) already exists in the container")
            }
            throw CNIError(CNIError.wiringFailed, "cannot create the veth pair", details: "\(error)")
        }
        let routes = request.defaultRoute ? [Subnet(IPv6Address.zero, prefixLength: 0)!] : [Subnet.overlay]
        do {
            try? TextFile.overwrite("/proc/sys/net/ipv6/conf/\(host)/accept_dad", "0")
            let hostIndex = try netlink.interfaceIndex(host)
            try netlink.addAddress(Self.gateway, prefixLength: 64, interface: hostIndex)
            try netlink.setLink(host, up: true)
            try netlink.replaceRoute(Subnet(address, prefixLength: 128)!, .device(hostIndex))
            let hostMac = try netlink.macAddress(of: host)
            let interface = request.interface
            let mac = try NetworkNamespace.run(request.netns) { () throws -> String in
                // No DAD: the address and the route work at once (the CNI reference waits up to 5 s).
                try? TextFile.overwrite("/proc/sys/net/ipv6/conf/\(interface)/accept_dad", "0")
                let inside = try Netlink()
                let index = try inside.interfaceIndex(interface)
                try inside.setLink(interface, up: true)
                try inside.addAddress(address, prefixLength: 128, interface: index)
                for route in routes { try inside.replaceRoute(route, .gateway(Self.gateway, index)) }
                return try inside.macAddress(of: interface)
            }
            return Attachment(key: request.key, hostInterface: host, hostMac: hostMac, interface: request.interface, mac: mac,
                              sandbox: request.netns, mtu: request.mtu, address: "\(address)/128",
                              gateway: "\(Self.gateway)", routes: routes.map { "\($0)" })
        } catch {
            _ = try? netlink.deleteLink(host)
            throw CNIError(CNIError.wiringFailed, "cannot configure the container interface", details: "\(error)")
        }
    }

    /// Removes the pair (the peer and the host route go with it); a missing one is fine.
    public func detach(hostInterface: String) throws(CNIError) {
        do { try netlink.deleteLink(hostInterface) } catch {
            throw CNIError(CNIError.wiringFailed, "cannot delete \(hostInterface)", details: "\(error)")
        }
    }

    /// Whether the attachment is still whole: host side up with its route, container side present.
    public func check(_ record: Attachment) throws(CNIError) {
        guard netlink.linkExists(record.hostInterface) else {
            throw CNIError(CNIError.checkFailed, "host interface \(record.hostInterface) is missing")
        }
        let interface = record.interface
        let present: Bool
        do { present = try NetworkNamespace.run(record.sandbox) { () throws -> Bool in try Netlink().linkExists(interface) } } catch {
            throw CNIError(CNIError.checkFailed, "cannot enter the container's network namespace", details: "\(error)")
        }
        guard present else { throw CNIError(CNIError.checkFailed, "interface \(interface) is missing in the container") }
    }

    /// Re-creates the host route of a record whose veth still exists (after a restart).
    public func restoreRoute(_ record: Attachment) {
        guard let address = IPAM.parse(record.address), let index = try? netlink.interfaceIndex(record.hostInterface) else { return }
        try? netlink.replaceRoute(Subnet(address, prefixLength: 128)!, .device(index))
    }

    public func linkExists(_ name: String) -> Bool { netlink.linkExists(name) }
}
