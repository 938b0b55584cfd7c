#if canImport(Glibc)
import Glibc
#endif
import MyceliumCore
import MyceliumDatapath
import MyceliumSystem
import NIOCore
import Synchronization

/// Reads the TUN device on a thread of its own and hands packets to the datapath's loop in
/// batches (one loop hop per batch, not per packet).
///
/// Flow: poll(fd, 200 ms) → read until EAGAIN or `batch` packets → with offloads, each read's
/// `virtio_net_hdr` says whether it is a GSO super-packet: split here into ≤ MTU segments with
/// their checksums (off the loop) → loop.execute(deliver).
/// Bounded: at most `DatapathLimits.tunBacklogPackets` packets wait for the loop; a batch read
/// while that many wait is dropped and counted (a local flood cannot grow memory or starve the
/// peers' reads on the loop). The poll timeout bounds how long `stop()` waits.
///
/// `@unchecked Sendable`: `tun` is not Sendable; this class only reads from it, on the reader
/// thread (the datapath writes on the loop: read(2) and write(2) on one fd from two threads are
/// safe, and `TunDevice` holds only `let`s); every other field is immutable, `Atomic` or `Mutex`.
final class TunReader: @unchecked Sendable {
    /// Packets (segments) per hand-over to the loop.
    static let batch = 64
    static let bufferSize = 65_536 + TunDevice.vnetHeaderLength

    /// What the reader counted, handed to the loop with each batch.
    struct Counts: Sendable {
        var backlogDropped: UInt64 = 0
        var malformed: UInt64 = 0
        var superPackets: UInt64 = 0
    }

    private let tun: TunDevice
    private let loop: any EventLoop
    /// Runs on the loop with a batch and what was counted since the previous batch.
    private let deliver: @Sendable ([[UInt8]], Counts) -> Void
    private let stopFlag = Atomic<Bool>(false)
    private let waiting = Atomic<Int>(0)
    private let backlogDropped = Atomic<UInt64>(0)
    private let malformed = Atomic<UInt64>(0)
    private let superPackets = Atomic<UInt64>(0)
    /// Set by `start`, read by `stop`, both on the node's start/stop path (never concurrently).
    private let thread = Mutex<pthread_t?>(nil)

    init(tun: TunDevice, loop: any EventLoop, deliver: @escaping @Sendable ([[UInt8]], Counts) -> Void) {
        self.tun = tun
        self.loop = loop
        self.deliver = deliver
    }

    func start() {
        precondition(thread.withLock { $0 == nil }, "TunReader started twice")
        var t = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(&t, nil, { raw in
            let reader = Unmanaged<TunReader>.fromOpaque(raw!).takeRetainedValue()
            reader.run()
            return nil
        }, context)
        // Without a thread nothing reads the TUN: a node that cannot carry traffic must not run.
        guard rc == 0 else {
            Unmanaged<TunReader>.fromOpaque(context).release()
            fatalError("cannot start the TUN reader thread: pthread_create returned \(rc)")
        }
        thread.withLock { $0 = t }
    }

    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        if let t = thread.withLock({ t -> pthread_t? in defer { t = nil }; return t }) { pthread_join(t, nil) }
    }

    private func run() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        let headerLength = tun.vnetHeader ? TunDevice.vnetHeaderLength : 0
        var pfd = pollfd(fd: tun.fileDescriptor, events: Int16(POLLIN), revents: 0)
        while !stopFlag.load(ordering: .relaxed) {
            let ready = poll(&pfd, 1, 200)
            guard ready > 0 else { continue }
            var packets: [[UInt8]] = []
            while packets.count < Self.batch, let n = try? tun.read(into: buffer), n > 0 {
                guard headerLength > 0 else {
                    packets.append(Array(buffer[..<n]))
                    continue
                }
                guard n > headerLength, let header = VirtioNetHeader(UnsafeRawBufferPointer(buffer)) else {
                    malformed.add(1, ordering: .relaxed)
                    continue
                }
                let packet = UnsafeRawBufferPointer(rebasing: buffer[headerLength..<n])
                if header == .none {
                    packets.append(Array(packet))
                    continue
                }
                do throws(OffloadError) {
                    try GSOSplit.split(packet, header: header, into: &packets)
                    if header.gsoType != VirtioNetHeader.GSO.none { superPackets.add(1, ordering: .relaxed) }
                } catch {
                    malformed.add(1, ordering: .relaxed)
                }
            }
            if packets.isEmpty { continue }
            guard waiting.load(ordering: .relaxed) < DatapathLimits.tunBacklogPackets else {
                backlogDropped.add(UInt64(packets.count), ordering: .relaxed)
                continue
            }
            waiting.add(packets.count, ordering: .relaxed)
            let batch = packets
            loop.execute { [self] in
                waiting.subtract(batch.count, ordering: .relaxed)
                deliver(batch, Counts(backlogDropped: backlogDropped.exchange(0, ordering: .relaxed),
                                      malformed: malformed.exchange(0, ordering: .relaxed),
                                      superPackets: superPackets.exchange(0, ordering: .relaxed)))
            }
        }
    }
}
