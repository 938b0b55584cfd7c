#if canImport(Glibc)
import Glibc
#endif
import CNetlink
import Synchronization

/// Calls `onChange` when a link or an IPv6 address of this network namespace changes: a route
/// netlink socket (libnl) joined to RTNLGRP_LINK and RTNLGRP_IPV6_IFADDR, read on a thread of
/// its own. The messages are not decoded: whoever listens rescans what it needs. `onChange`
/// runs on the monitor's thread, at most once per batch of messages. The thread sleeps in
/// poll(2) until a message or `stop()` (a byte on a pipe) wakes it: no periodic wake-ups.
public final class AddressMonitor: Sendable {
    // The nl_sock is only touched by init, the monitor thread, and deinit after that thread ended.
    private nonisolated(unsafe) let socket: OpaquePointer
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<pthread_t?>(nil)
    private let onChange: @Sendable () -> Void
    /// Read and write ends of the pipe `stop()` wakes the thread with.
    private let wake: (read: Int32, write: Int32)

    public init(onChange: @escaping @Sendable () -> Void) throws(SystemError) {
        guard let sk = nl_socket_alloc() else { throw SystemError("allocate netlink socket", errno: ENOMEM) }
        nl_socket_disable_seq_check(sk)
        var rc = nl_connect(sk, NETLINK_ROUTE)
        if rc == 0 { rc = nl_socket_add_membership(sk, Int32(RTNLGRP_LINK.rawValue)) }
        if rc == 0 { rc = nl_socket_add_membership(sk, Int32(RTNLGRP_IPV6_IFADDR.rawValue)) }
        if rc == 0 { rc = nl_socket_set_nonblocking(sk) }
        guard rc == 0 else {
            nl_socket_free(sk)
            throw SystemError("subscribe to address changes", netlink: rc)
        }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            let error = errno
            nl_socket_free(sk)
            throw SystemError("create the monitor's wake-up pipe", errno: error)
        }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        socket = sk
        wake = (fds[0], fds[1])
        self.onChange = onChange
    }

    deinit {
        nl_socket_free(socket)
        close(wake.read)
        close(wake.write)
    }

    public func start() {
        let box = Unmanaged.passRetained(self)
        var id = pthread_t()
        let rc = pthread_create(&id, nil, { raw in
            let monitor = Unmanaged<AddressMonitor>.fromOpaque(raw!).takeRetainedValue()
            monitor.loop()
            return nil
        }, box.toOpaque())
        if rc != 0 { box.release(); return }
        thread.withLock { $0 = id }
    }

    /// Wakes the thread, stops it and waits for it.
    public func stop() {
        stopping.store(true, ordering: .relaxed)
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
        if let id = thread.withLock({ t in defer { t = nil }; return t }) { pthread_join(id, nil) }
    }

    private func loop() {
        let fd = nl_socket_get_fd(socket)
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while !stopping.load(ordering: .relaxed) {
            var fds = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, -1) > 0, fds[0].revents != 0 else { continue }
            var got = false
            // Drain: one call per batch, whatever the number of messages. ENOBUFS (the kernel
            // dropped messages) also means "something changed".
            while true {
                let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
                if n > 0 || (n < 0 && errno == ENOBUFS) { got = true; continue }
                if n < 0, errno == EINTR { continue }
                break
            }
            if got { onChange() }
        }
    }
}
