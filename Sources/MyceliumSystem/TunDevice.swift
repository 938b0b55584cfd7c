#if canImport(Glibc)
import Glibc
#endif
import CMyceliumShims

/// A layer-3 TUN device (no packet information header): one IPv6 packet per read or write.
///
/// Non-persistent: the device disappears with its addresses and routes when this object
/// (its last fd) goes away. The fd is non-blocking; the datapath polls it.
public final class TunDevice {
    public let fileDescriptor: Int32
    /// The name the kernel gave it (a `%d` pattern is filled in).
    public let name: String

    /// Creates the device in the calling thread's network namespace. Needs CAP_NET_ADMIN.
    public init(name: String) throws(SystemError) {
        var actual = [CChar](repeating: 0, count: Int(cmyc_ifnamsiz()))
        let fd = cmyc_tun_open(name, &actual)
        guard fd >= 0 else {
            let hint = -fd == EPERM ? " (needs CAP_NET_ADMIN)" : -fd == ENOENT ? " (/dev/net/tun missing)" : ""
            throw SystemError("open TUN device \(name)\(hint)", errno: -fd)
        }
        fileDescriptor = fd
        self.name = actual.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
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
