#if canImport(Glibc)
import Glibc
#endif
import MyceliumSystem
import NIOCore
import Synchronization

/// Reads the TUN device on a thread of its own and hands packets to the datapath's loop in
/// batches (one loop hop per batch, not per packet).
///
/// Flow: poll(fd, 200 ms) → read up to `batch` packets until EAGAIN → loop.execute(deliver).
/// Bounded: at most `DatapathLimits.tunBacklogPackets` packets wait for the loop; a batch read
/// while that many wait is dropped and counted (a local flood cannot grow memory or starve the
/// peers' reads on the loop). The poll timeout bounds how long `stop()` waits.
///
/// `@unchecked Sendable`: `tun` is not Sendable, and is only read from on the reader thread
/// (between `start` and `stop`); every other field is an `Atomic` or behind a `Mutex`.
final class TunReader: @unchecked Sendable {
    static let batch = 64
    static let bufferSize = 65_536

    private let tun: TunDevice
    private let loop: any EventLoop
    /// Runs on the loop with a batch and the packets dropped since the previous batch.
    private let deliver: @Sendable ([[UInt8]], UInt64) -> Void
    private let stopFlag = Atomic<Bool>(false)
    private let waiting = Atomic<Int>(0)
    private let dropped = Atomic<UInt64>(0)
    /// Set by `start`, read by `stop`, both on the node's start/stop path (never concurrently).
    private let thread = Mutex<pthread_t?>(nil)

    init(tun: TunDevice, loop: any EventLoop, deliver: @escaping @Sendable ([[UInt8]], UInt64) -> Void) {
        self.tun = tun
        self.loop = loop
        self.deliver = deliver
    }

    func start() {
        var t = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&t, nil, { raw in
            let reader = Unmanaged<TunReader>.fromOpaque(raw!).takeRetainedValue()
            reader.run()
            return nil
        }, context)
        thread.withLock { $0 = t }
    }

    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        if let t = thread.withLock({ t -> pthread_t? in defer { t = nil }; return t }) { pthread_join(t, nil) }
    }

    private func run() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        var pfd = pollfd(fd: tun.fileDescriptor, events: Int16(POLLIN), revents: 0)
        while !stopFlag.load(ordering: .relaxed) {
            let ready = poll(&pfd, 1, 200)
            guard ready > 0 else { continue }
            var packets: [[UInt8]] = []
            while packets.count < Self.batch, let n = try? tun.read(into: buffer), n > 0 {
                packets.append(Array(buffer[..<n]))
            }
            if packets.isEmpty { continue }
            guard waiting.load(ordering: .relaxed) < DatapathLimits.tunBacklogPackets else {
                dropped.add(UInt64(packets.count), ordering: .relaxed)
                continue
            }
            waiting.add(packets.count, ordering: .relaxed)
            let batch = packets
            loop.execute { [self] in
                waiting.subtract(batch.count, ordering: .relaxed)
                deliver(batch, dropped.exchange(0, ordering: .relaxed))
            }
        }
    }
}
