public import MyceliumCore
public import NIOCore

/// Frames a peer stream (spec §3) both ways.
///
/// Flow, inbound: bytes → `FrameDecoder` → `Packet`s up the pipeline. A frame whose content is
/// rejected is skipped whole and counted; the stream stays in sync. A peer is closed when its
/// framing is lost (unknown version or type) or when it sends more than
/// `PeerTuning.maxConsecutiveDropped` rejected frames in a row (garbage or a flood), so a
/// misbehaving peer costs us one connection, never a stall. Outbound: `Packet` → bytes.
public final class PacketFramingHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = Packet
    public typealias OutboundIn = Packet
    public typealias OutboundOut = ByteBuffer

    private var decoder = FrameDecoder()
    private var consecutiveDropped = 0
    private var scratch: [UInt8] = []
    public private(set) var counters = PeerCounters()

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        counters.bytesIn += UInt64(buffer.readableBytes)
        buffer.withUnsafeReadableBytes { decoder.append(buffer: $0) }
        do {
            while let output = try decoder.next() {
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
                        context.close(promise: nil)
                        return
                    }
                }
            }
        } catch {
            counters.framingErrors += 1
            counters.closedForMisbehaviour = true
            context.close(promise: nil)
        }
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let packet = unwrapOutboundIn(data)
        scratch.removeAll(keepingCapacity: true)
        packet.encode(to: &scratch)
        var out = context.channel.allocator.buffer(capacity: scratch.count)
        out.writeBytes(scratch)
        counters.bytesOut += UInt64(scratch.count)
        counters.packetsOut += 1
        context.write(wrapOutboundOut(out), promise: promise)
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
}

/// Our own limits for peer connections (not protocol constants).
public enum PeerTuning {
    /// Rejected frames in a row before a peer is considered broken or hostile.
    public static let maxConsecutiveDropped = 64
    /// TCP_USER_TIMEOUT on peer sockets: unacknowledged data for this long aborts the
    /// connection. A cut link is then noticed within seconds while traffic flows, instead of
    /// the protocol's 43-53 s without IHU (which still applies to idle links).
    public static let tcpUserTimeoutMs = 15_000
}
