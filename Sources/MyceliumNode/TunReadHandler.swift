#if canImport(Glibc)
import Glibc
#endif
import Logging
import MyceliumCore
import MyceliumDatapath
import MyceliumSystem
import NIOCore
import NIOPosix

/// Reads the TUN device on the datapath's own loop: no reader thread and no hand-over, so a
/// packet sent crosses no thread between the kernel and the peer socket (the hand-over was most
/// of a ping's time).
///
/// Flow: epoll says the TUN fd is readable → NIO reads one packet into its pooled buffer →
/// `channelRead`: that packet, then the fd read directly until EAGAIN or `batch` segments (NIO
/// stops after one short read, and a TUN read is always short) → per read, the
/// `virtio_net_hdr` (offloads on): a GSO super-packet is split into ≤ MTU segments →
/// `Datapath.fromTun` each → `channelReadComplete` → `Datapath.flush` (one flush per batch).
///
/// Bounded without a queue of ours: packets wait in the kernel's TUN queue (`txqueuelen`, 500
/// reads) until the loop takes them; while the loop is behind, the kernel drops there and counts
/// the TUN's TX drops (exported as `mycelium_datapath_dropped{reason="tun_backlog"}`). A local
/// flood cannot starve the peers: each wake reads at most `batch` segments, then the loop serves
/// the other ready channels (epoll is level-triggered, so what is left wakes it again).
///
/// Confinement: a channel handler, called only on the channel's loop, which is the datapath's.
///
/// Generic over where packets go (`TunReadSink`: the `Datapath`, or a test's double) and given
/// the fd's read as a function, so its batching, splitting and errors are tested without a TUN.
final class TunReadHandler<Sink: TunReadSink>: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    /// One direct read of the fd into the buffer: bytes read, nil when nothing is left (EAGAIN).
    typealias Read = (UnsafeMutableRawBufferPointer) throws(SystemError) -> Int?

    private let read: Read
    private let deviceName: String
    private let sink: Sink
    private let logger: Logger
    private let headerLength: Int
    /// The loop's packet arrays: each packet read is copied once, into one of them.
    private let pool: PacketPool
    private let scratch: UnsafeMutableRawBufferPointer
    /// Called once if the channel closes (a read error, or the node's stop).
    private let onClosed: () -> Void
    /// Segments of the super-packet being split (capacity kept across reads).
    private var segments: [[UInt8]] = []

    /// `vnetHeader`: each read starts with a `virtio_net_hdr` (offloads on).
    init(read: @escaping Read, deviceName: String, vnetHeader: Bool, sink: Sink, logger: Logger, onClosed: @escaping () -> Void) {
        self.read = read
        self.deviceName = deviceName
        self.sink = sink
        self.logger = logger
        self.onClosed = onClosed
        headerLength = vnetHeader ? TunDevice.vnetHeaderLength : 0
        pool = sink.packetPool
        scratch = .allocate(byteCount: TunReading.bufferSize, alignment: 16)
    }

    deinit { scratch.deallocate() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let first = unwrapInboundIn(data)
        var count = first.withUnsafeReadableBytes { handle($0) }
        while count < TunReading.batch {
            let n: Int?
            do { n = try read(scratch) } catch {
                report(error)
                break
            }
            guard let n, n > 0 else { break }
            count += handle(UnsafeRawBufferPointer(rebasing: scratch[..<n]))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        sink.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        report(error)
    }

    /// NIO closes the channel after a failed read of its own; the node then carries no traffic
    /// from this host, which must be loud (and `/readyz` fails, through `onClosed`).
    func channelInactive(context: ChannelHandlerContext) {
        onClosed()
        context.fireChannelInactive()
    }

    private func report(_ error: any Error) {
        logger.error("reading the TUN device failed", metadata: ["name": "\(deviceName)", "error": "\(error)"])
    }

    /// One read (header and packet): its segments to the datapath; how many there were.
    private func handle(_ read: UnsafeRawBufferPointer) -> Int {
        guard headerLength > 0 else {
            sink.fromTun(EncryptedPayload.sealable(read, pool: pool))
            return 1
        }
        guard read.count > headerLength, let header = VirtioNetHeader(read) else {
            sink.countTunRead(malformed: true, superPacket: false)
            return 1
        }
        let packet = UnsafeRawBufferPointer(rebasing: read[headerLength...])
        if header == .none {
            sink.fromTun(EncryptedPayload.sealable(packet, pool: pool))
            return 1
        }
        segments.removeAll(keepingCapacity: true)
        do throws(OffloadError) {
            try GSOSplit.split(packet, header: header, into: &segments, pool: pool)
        } catch {
            sink.countTunRead(malformed: true, superPacket: false)
            return 1
        }
        if header.gsoType != VirtioNetHeader.GSO.none { sink.countTunRead(malformed: false, superPacket: true) }
        // Each segment handed over, not shared: the datapath seals it in its own array.
        for i in segments.indices {
            var segment: [UInt8] = []
            swap(&segment, &segments[i])
            sink.fromTun(consume segment)
        }
        return segments.count
    }
}

/// Where `TunReadHandler` hands what it read.
protocol TunReadSink: AnyObject {
    /// The loop's packet arrays, which reads are copied into.
    var packetPool: PacketPool { get }
    /// One packet (a segment of a super-packet, or a whole read), with seal room.
    func fromTun(_ packet: consuming [UInt8])
    /// A read that was not a packet (`malformed`), or a super-packet that was split.
    func countTunRead(malformed: Bool, superPacket: Bool)
    /// The end of a batch.
    func flush()
}

extension Datapath: TunReadSink {}

/// The TUN reading channel.
enum TunReading {
    /// Segments per wake (and so per flush).
    static let batch = 64
    /// One read: a 64 KiB super-packet behind its header.
    static let bufferSize = 65_536 + TunDevice.vnetHeaderLength

    /// Opens the reading channel on `loop` over a duplicate of the TUN's fd (NIO closes its own
    /// copy with the channel; the device keeps its fd for writes). `onClosed` runs on the loop if
    /// the channel closes.
    static func open(tun: TunDevice, datapath: Datapath, loop: any EventLoop, logger: Logger,
                     onClosed: @escaping @Sendable () -> Void) async throws -> any Channel {
        // Close-on-exec like the original: a child process must not keep the device alive.
        let fd = fcntl(tun.fileDescriptor, F_DUPFD_CLOEXEC, 0)
        guard fd >= 0 else { throw SystemError("duplicate the TUN fd", errno: errno) }
        do {
            return try await NIOPipeBootstrap(group: loop)
                .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: bufferSize))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            TunReadHandler(read: { buffer throws(SystemError) in try tun.read(into: buffer) }, deviceName: tun.name,
                                           vnetHeader: tun.vnetHeader, sink: datapath, logger: logger, onClosed: onClosed))
                    }
                }
                .takingOwnershipOfDescriptor(input: fd).get()
        } catch {
            close(fd)
            throw error
        }
    }
}
