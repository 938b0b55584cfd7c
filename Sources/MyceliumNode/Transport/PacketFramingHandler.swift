#if canImport(Glibc)
import Glibc
#endif
public import MyceliumCore
public import NIOCore

/// Frames a peer stream (spec §3) both ways.
///
/// Flow, inbound: bytes → `FrameDecoder` → `Packet`s up the pipeline. A frame whose content is
/// rejected is skipped whole and counted; the stream stays in sync. A peer is closed when its
/// framing is lost (unknown version or type) or when it sends more than
/// `PeerTuning.maxConsecutiveDropped` rejected frames in a row (garbage or a flood), so a
/// misbehaving peer costs us one connection, never a stall. Outbound: `Packet` → bytes, appended
/// to one buffer that goes down the pipeline on `flush` (or once it holds `batchBytes`): one
/// ByteBuffer and one NIO write per batch, not per packet.
///
/// Backpressure: above the channel's high-water mark (`PeerTuning.outboxHighWater`) the
/// datapath stops writing data to this peer (`RouterService.send` answers `.busy`); what is
/// still written then (control packets) may exceed the mark by at most
/// `PeerTuning.outboxOverflowBytes`, and a peer that stays unwritable for
/// `PeerTuning.stalledPeerTimeoutMs` is not reading at all: it is closed either way.
public final class PacketFramingHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = Packet
    public typealias OutboundIn = Packet
    public typealias OutboundOut = ByteBuffer

    private var decoder = FrameDecoder()
    /// QUIC datagrams: each one frame, decoded here (reset every time: no allocation per datagram).
    private var datagramDecoder = FrameDecoder()
    private var consecutiveDropped = 0
    // `pending`: frames written since the last flush, not yet handed to the channel.
    // `batchBuffers`: where batch buffers come from and go back to once the channel has sent
    // them: the loop's pool once the router knows the connection (`PeerHandler`), a small one
    // of this connection's own before.
    //
    // Every frame written touches these: in release builds exempt from run-time exclusivity
    // checks (5 % of a sending daemon's CPU with the datapath's). Sound because a handler runs
    // on its channel's loop only and `append` calls out to nothing that could write to this
    // handler again while it holds an access (`writePending` lets go of `pending` before
    // `context.write`). Debug builds (the tests) keep the checks.
    #if DEBUG
    private var scratch: [UInt8] = []
    private var pending: ByteBuffer?
    var batchBuffers = BatchBufferPool(limit: 2)
    public private(set) var counters = PeerCounters()
    #else
    @exclusivity(unchecked) private var scratch: [UInt8] = []
    @exclusivity(unchecked) private var pending: ByteBuffer?
    @exclusivity(unchecked) var batchBuffers = BatchBufferPool(limit: 2)
    @exclusivity(unchecked) public private(set) var counters = PeerCounters()
    #endif
    /// Above this many pending bytes the batch goes down without waiting for `flush`.
    static let batchBytes = 64 << 10
    /// Bytes written since the channel went above its high-water mark.
    private var overflow = 0
    private var stallCheck: Scheduled<Void>?
    private let onMisbehaviour: (@Sendable (_ kind: String, _ why: String) -> Void)?
    /// Data packets read go straight here instead of up the pipeline (no `NIOAny` box per
    /// packet); `PeerHandler` sets it once the router knows the connection.
    var onData: ((consuming DataPacket) -> Void)?
    /// Where data packets' payload arrays come from (the loop's pool, set with `onData`).
    var pool: PacketPool?

    /// `onMisbehaviour` hears why a peer was closed for what it sent or did not read (audit log).
    public init(onMisbehaviour: (@Sendable (_ kind: String, _ why: String) -> Void)? = nil) {
        self.onMisbehaviour = onMisbehaviour
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            overflow = 0
            stallCheck?.cancel()
            stallCheck = nil
        } else if stallCheck == nil {
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            stallCheck = context.eventLoop.scheduleTask(in: .milliseconds(PeerTuning.stalledPeerTimeoutMs)) {
                let (handler, context) = bound.value
                handler.stallCheck = nil
                guard !context.channel.isWritable else { return }
                handler.closeForOutbox(context: context, "not reading: outbox full for \(PeerTuning.stalledPeerTimeoutMs / 1000) s")
            }
        }
        context.fireChannelWritabilityChanged()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        stallCheck?.cancel()
        stallCheck = nil
    }

    private func closeForOutbox(context: ChannelHandlerContext, _ why: String) {
        counters.closedForMisbehaviour = true
        counters.closedForOutbox = true
        onMisbehaviour?("peer-not-reading", why)
        // Abortive close (RST): a graceful FIN would wait behind the unsent bytes the peer
        // refuses to read, and the kernel would hold its send buffer for minutes.
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        guard let socket = context.channel as? any SocketOptionProvider else {
            context.close(promise: nil)
            return
        }
        socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in bound.value.close(promise: nil) }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        counters.bytesIn += UInt64(buffer.readableBytes)
        buffer.withUnsafeReadableBytes { decoder.append(buffer: $0) }
        do {
            while let output = try decoder.next(pool: pool) {
                if case .packet(.data) = output, let onData {
                    consecutiveDropped = 0
                    counters.packetsIn += 1
                    // Handed over, not shared, so the datapath can open a packet for us in its
                    // own array. Only this form moves it (a `switch consume` copies: measured).
                    guard case let .packet(.data(data)) = consume output else { continue }
                    onData(consume data)
                    continue
                }
                switch output {
                case let .packet(packet):
                    consecutiveDropped = 0
                    counters.packetsIn += 1
                    context.fireChannelRead(wrapInboundOut(packet))
                case .dropped:
                    counters.framesDropped += 1
                    consecutiveDropped += 1
                    if consecutiveDropped > PeerTuning.maxConsecutiveDropped {
                        counters.closedForMisbehaviour = true
                        onMisbehaviour?("bad-frames", "\(consecutiveDropped) rejected frames in a row")
                        context.close(promise: nil)
                        return
                    }
                }
            }
        } catch {
            counters.framingErrors += 1
            counters.closedForMisbehaviour = true
            onMisbehaviour?("bad-frames", "framing lost: \(error)")
            context.close(promise: nil)
        }
    }

    /// One QUIC DATAGRAM frame: exactly one whole frame (spec §3.6), handed on as `channelRead`
    /// hands a frame of the stream. Anything else is counted as a dropped frame; the
    /// connection stays (Rust drops the peer; a stray datagram is not worth a link to us).
    /// False when the datagram was dropped.
    @discardableResult
    func receiveDatagram(_ bytes: UnsafeRawBufferPointer, context: ChannelHandlerContext) -> Bool {
        counters.bytesIn += UInt64(bytes.count)
        datagramDecoder.reset()
        datagramDecoder.append(buffer: bytes)
        let output: FrameDecoder.Output?
        do {
            output = try datagramDecoder.next(pool: pool)
        } catch {
            counters.framesDropped += 1
            return false
        }
        guard datagramDecoder.bufferedCount == 0, let output else {
            counters.framesDropped += 1
            return false
        }
        switch output {
        case let .packet(.data(data)) where onData != nil:
            counters.packetsIn += 1
            onData?(data)
        case let .packet(packet):
            counters.packetsIn += 1
            context.fireChannelRead(wrapInboundOut(packet))
        case .dropped:
            counters.framesDropped += 1
            return false
        }
        return true
    }

    /// A data packet sent as a QUIC datagram (`QUICPeerChannel.sendData`), counted as `append`
    /// counts frames. One refused by congestion control is dropped.
    func countDatagram(bytes: Int, sent: Bool) {
        guard sent else {
            counters.datagramsDropped += 1
            return
        }
        counters.bytesOut += UInt64(bytes)
        counters.packetsOut += 1
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        append(unwrapOutboundIn(data), context: context, promise: promise)
    }

    /// A data packet from the datapath, framed into the pending batch as `write` would, without
    /// boxing it through the pipeline. On the channel's loop, with this handler's context.
    func enqueue(_ packet: DataPacket, context: ChannelHandlerContext) {
        context.eventLoop.assertInEventLoop()
        append(.data(packet), context: context, promise: nil)
    }

    private func append(_ packet: Packet, context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        // A data packet's payload is copied once, from its array into the batch; only its
        // 40 header bytes (and control packets, which are small) go through `scratch`.
        scratch.removeAll(keepingCapacity: true)
        let frameLength: Int
        if case let .data(data) = packet {
            data.appendFrameHeader(to: &scratch)
            frameLength = scratch.count + data.payload.count
        } else {
            packet.encode(to: &scratch)
            frameLength = scratch.count
        }
        counters.bytesOut += UInt64(frameLength)
        counters.packetsOut += 1
        if !context.channel.isWritable {
            overflow += frameLength
            if overflow > PeerTuning.outboxOverflowBytes {
                promise?.fail(ChannelError.outputClosed)
                closeForOutbox(context: context, "outbox over \(PeerTuning.outboxHighWater + PeerTuning.outboxOverflowBytes) bytes")
                return
            }
        }
        if pending == nil {
            // Room for a full batch of ordinary packets: the batch goes once it holds `batchBytes`.
            pending = batchBuffers.take(minimumCapacity: frameLength, newCapacity: Self.batchBytes + 4096,
                                        allocator: context.channel.allocator)
        }
        pending!.writeBytes(scratch)
        if case let .data(data) = packet { pending!.writeBytes(data.payload) }
        // A promise completes when its own bytes are written: send the batch with it.
        if promise != nil || pending!.readableBytes >= Self.batchBytes { writePending(context: context, promise: promise) }
    }

    public func flush(context: ChannelHandlerContext) {
        writePending(context: context, promise: nil)
        context.flush()
    }

    private func writePending(context: ChannelHandlerContext, promise: EventLoopPromise<Void>?) {
        guard let batch = pending else {
            promise?.succeed()
            return
        }
        pending = nil
        batchBuffers.keep(batch)
        context.write(wrapOutboundOut(batch), promise: promise)
    }
}

/// What one peer connection did; read on the connection's event loop.
public struct PeerCounters: Hashable, Sendable {
    public var bytesIn: UInt64 = 0
    public var bytesOut: UInt64 = 0
    public var packetsIn: UInt64 = 0
    public var packetsOut: UInt64 = 0
    /// Complete frames skipped because their content was rejected.
    public var framesDropped: UInt64 = 0
    /// Times framing was lost (the connection is closed then).
    public var framingErrors: UInt64 = 0
    public var closedForMisbehaviour = false
    /// Closed because it did not read what we sent (outbox limit or stall).
    public var closedForOutbox = false
    /// QUIC: data packets congestion control did not let out (datagrams are not retransmitted).
    public var datagramsDropped: UInt64 = 0
}

/// Our own limits for peer connections (not protocol constants).
public enum PeerTuning {
    /// Rejected frames in a row before a peer is considered broken or hostile.
    public static let maxConsecutiveDropped = 64
    /// TCP_USER_TIMEOUT on peer sockets: unacknowledged data for this long aborts the
    /// connection. A cut link is then noticed within seconds while traffic flows, instead of
    /// the protocol's 43-53 s without IHU (which still applies to idle links).
    public static let tcpUserTimeoutMs = 15_000
    /// NIO's write-buffer water marks on peer channels: above `outboxHighWater` bytes queued in
    /// user space (the kernel's socket buffer, autotuned to the path, is already full by then)
    /// the channel is unwritable and data to the peer is dropped; it becomes writable again
    /// below `outboxLowWater`. Measured with iperf3 through two nodes: 256 KiB keeps the old
    /// unbounded throughput with no drops; 1 MiB was ~10 % slower, 64 KiB dropped 10 %.
    public static let outboxHighWater = 256 << 10
    public static let outboxLowWater = 128 << 10
    /// What may still be written (control) above the high-water mark before the peer is closed.
    public static let outboxOverflowBytes = 1 << 20
    /// A peer unwritable this long is not reading: closed.
    public static let stalledPeerTimeoutMs: Int64 = 30_000
    /// Inbound peer connections at once, in all and from one IP address.
    public static let maxInbound = 1024
    public static let maxInboundPerAddress = 8
    /// Inbound connections not yet peers (TLS handshake running) at once.
    public static let maxPendingHandshakes = 64
    /// QUIC handshakes of peers dialling us, at once (Rust: 10).
    public static let maxPendingQUICHandshakes = 10
    /// Peers found by LAN discovery: at most this many known at once, and new ones dialled
    /// at most `discoveryDialBurst` at once, then one per `discoveryDialIntervalMs`.
    public static let maxDiscoveredPeers = 64
    public static let discoveryDialBurst = 8
    public static let discoveryDialIntervalMs: Int64 = 1_000
}
