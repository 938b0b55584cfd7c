#if canImport(Glibc)
import Glibc
#endif
import CMyceliumShims

/// A layer-3 TUN device (no packet information header): one IPv6 packet per read or write.
///
/// With offloads (`offload: true`) every read and write starts with a 10-byte `virtio_net_hdr`
/// (`vnetHeader`), and the kernel hands us TCP (and, from Linux 6.2, UDP) super-packets of up
/// to 64 KiB to split, and takes coalesced ones: one syscall per 64 KiB instead of per 1400
/// bytes. What the kernel accepted is in `offloads`; when it refuses them the device works as
/// a plain one.
///
/// Non-persistent: the device disappears with its addresses and routes when this object
/// (its last fd) goes away. The fd is non-blocking; the datapath polls it.
public final class TunDevice: Sendable {
    /// TUN_F_* bits of TUNSETOFFLOAD.
    public struct Offloads: OptionSet, Sendable, CustomStringConvertible {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let checksum = Offloads(rawValue: 0x01)
        public static let tso4 = Offloads(rawValue: 0x02)
        public static let tso6 = Offloads(rawValue: 0x04)
        public static let uso4 = Offloads(rawValue: 0x20)
        public static let uso6 = Offloads(rawValue: 0x40)

        public var description: String {
            let names: [(Offloads, String)] = [(.checksum, "csum"), (.tso4, "tso4"), (.tso6, "tso6"), (.uso4, "uso4"), (.uso6, "uso6")]
            let on = names.filter { contains($0.0) }.map(\.1)
            return on.isEmpty ? "none" : on.joined(separator: ",")
        }
    }

    /// The size of the `virtio_net_hdr` in front of every packet when `vnetHeader` is set.
    public static let vnetHeaderLength = 10

    public let fileDescriptor: Int32
    /// The name the kernel gave it (a `%d` pattern is filled in).
    public let name: String
    /// Every read and write carries a `virtio_net_hdr` first.
    public let vnetHeader: Bool
    /// What the kernel accepted: `[]` without offloads.
    public let offloads: Offloads

    /// Creates the device in the calling thread's network namespace. Needs CAP_NET_ADMIN.
    public init(name: String, offload: Bool = false) throws(SystemError) {
        var actual = [CChar](repeating: 0, count: Int(cmyc_ifnamsiz()))
        let fd = cmyc_tun_open_flags(name, &actual, offload ? 1 : 0)
        guard fd >= 0 else {
            let hint = -fd == EPERM ? " (needs CAP_NET_ADMIN)" : -fd == ENOENT ? " (/dev/net/tun missing)" : ""
            throw SystemError("open TUN device \(name)\(hint)", errno: -fd)
        }
        fileDescriptor = fd
        self.name = actual.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        var accepted: Offloads = []
        if offload {
            // Best first; USO needs Linux 6.2. A refused set leaves the device without offloads
            // (still with the header, which then always says "no GSO").
            if cmyc_tun_set_vnet_hdr_size(fd, Int32(Self.vnetHeaderLength)) == 0 {
                for wanted: Offloads in [[.checksum, .tso4, .tso6, .uso4, .uso6], [.checksum, .tso4, .tso6]]
                where cmyc_tun_set_offload(fd, wanted.rawValue) == 0 {
                    accepted = wanted
                    break
                }
            }
        }
        vnetHeader = offload
        offloads = accepted
    }

    deinit { close(fileDescriptor) }

    /// Reads one packet into `buffer`; nil when none is waiting (EAGAIN).
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Int? {
        while true {
            let n = Glibc.read(fileDescriptor, buffer.baseAddress, buffer.count)
            if n >= 0 { return n }
            switch errno {
            case EINTR: continue
            case EAGAIN: return nil
            case let e: throw SystemError("read \(name)", errno: e)
            }
        }
    }

    /// Writes a `virtio_net_hdr` and the packet behind it in one syscall (`vnetHeader` only).
    /// A full queue (EAGAIN) drops it.
    @discardableResult
    public func write(header: UnsafeRawBufferPointer, packet: UnsafeRawBufferPointer) throws(SystemError) -> Bool {
        var vectors = (iovec(iov_base: UnsafeMutableRawPointer(mutating: header.baseAddress), iov_len: header.count),
                       iovec(iov_base: UnsafeMutableRawPointer(mutating: packet.baseAddress), iov_len: packet.count))
        while true {
            let n = withUnsafeMutablePointer(to: &vectors) {
                $0.withMemoryRebound(to: iovec.self, capacity: 2) { Glibc.writev(fileDescriptor, $0, 2) }
            }
            if n >= 0 { return true }
            switch errno {
            case EINTR: continue
            case EAGAIN: return false
            case let e: throw SystemError("write \(name)", errno: e)
            }
        }
    }

    /// Writes one packet. A full queue (EAGAIN) drops it, as the kernel would on a full link.
    @discardableResult
    public func write(_ packet: UnsafeRawBufferPointer) throws(SystemError) -> Bool {
        while true {
            let n = Glibc.write(fileDescriptor, packet.baseAddress, packet.count)
            if n >= 0 { return true }
            switch errno {
            case EINTR: continue
            case EAGAIN: return false
            case let e: throw SystemError("write \(name)", errno: e)
            }
        }
    }
}

/// SO_MARK on a socket, so policy rules can tell the node's own underlay traffic apart.
public enum SocketMark {
    /// TCP_USER_TIMEOUT's option name at level IPPROTO_TCP.
    public static let tcpUserTimeoutOptionName: Int32 = cmyc_tcp_user_timeout_option()

    /// SO_MARK's option name at level SOL_SOCKET (for channel options set before connect).
    public static let optionName: Int32 = cmyc_so_mark_option()

    public static func set(_ mark: UInt32, on fd: Int32) throws(SystemError) {
        let rc = cmyc_set_mark(fd, mark)
        guard rc == 0 else { throw SystemError("set SO_MARK \(mark)", errno: -rc) }
    }
}
