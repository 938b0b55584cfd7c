#if canImport(Glibc)
import Glibc
#endif
import MyceliumSystem
import NIOCore

/// Reads the TUN device on a thread of its own and hands packets to the datapath's loop in
/// batches (one loop hop per batch, not per packet).
///
/// Flow: poll(fd, 200 ms) → read up to `batch` packets until EAGAIN → loop.execute(deliver).
/// The poll timeout bounds how long `stop()` waits.
final class TunReader: @unchecked Sendable {
    static let batch = 64
    static let bufferSize = 65_536

    private let tun: TunDevice
    private let loop: any EventLoop
    private let deliver: @Sendable ([[UInt8]]) -> Void
    private var thread: pthread_t?
    private let stopFlag = UnsafeMutablePointer<Int32>.allocate(capacity: 1)

    init(tun: TunDevice, loop: any EventLoop, deliver: @escaping @Sendable ([[UInt8]]) -> Void) {
        self.tun = tun
        self.loop = loop
        self.deliver = deliver
        stopFlag.initialize(to: 0)
    }

    deinit { stopFlag.deallocate() }

    func start() {
        var t = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&t, nil, { raw in
            let reader = Unmanaged<TunReader>.fromOpaque(raw!).takeRetainedValue()
            reader.run()
            return nil
        }, context)
        thread = t
    }

    func stop() {
        // A plain store is enough: the reader re-checks at least every poll timeout.
        stopFlag.pointee = 1
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private func run() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var pfd = pollfd(fd: tun.fileDescriptor, events: Int16(POLLIN), revents: 0)
        while stopFlag.pointee == 0 {
            let ready = poll(&pfd, 1, 200)
            guard ready > 0 else { continue }
            var packets: [[UInt8]] = []
            while packets.count < Self.batch, let n = try? tun.read(into: buffer), n > 0 {
                packets.append(Array(buffer[..<n]))
            }
            if packets.isEmpty { continue }
            let deliver = self.deliver
            let batch = packets
            loop.execute { deliver(batch) }
        }
    }
}
