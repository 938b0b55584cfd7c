public import MyceliumCore
public import MyceliumRouting
public import NIOCore

/// The end of a peer's pipeline: registers the connection with the router when it becomes
/// active, hands it control packets, and removes it when the connection goes away.
public final class PeerHandler: ChannelInboundHandler {
    public typealias InboundIn = Packet

    private let service: RouterService
    private let onData: (consuming DataPacket, NeighbourId) -> Void
    public private(set) var neighbour: NeighbourId?

    /// `onData` receives data packets (the datapath); it runs on the datapath's loop.
    public init(service: RouterService, onData: @escaping (consuming DataPacket, NeighbourId) -> Void) {
        self.service = service
        self.onData = onData
    }

    public func channelActive(context: ChannelHandlerContext) {
        // Data bypasses the pipeline both ways when the framing handler is there (it always is
        // on a peer connection): no `NIOAny` box and no handler hops per packet.
        let pipeline = context.pipeline.syncOperations
        let framing = try? pipeline.handler(type: PacketFramingHandler.self)
        let framingContext = try? pipeline.context(handlerType: PacketFramingHandler.self)
        var sink: ((DataPacket) -> Void)?
        let quic = context.channel as? QUICPeerChannel
        if let framing, let framingContext {
            if let quic {
                sink = { quic.sendData($0, framing: framing, context: framingContext) }
            } else {
                sink = { framing.enqueue($0, context: framingContext) }
            }
        }
        let cost = Self.staticCost(of: context.channel.remoteAddress, quic: quic != nil)
        let id = service.attach(context.channel, staticCost: cost, dataSink: sink)
        neighbour = id
        if let framing {
            let onData = self.onData
            framing.onData = { packet in onData(consume packet, id) }
            framing.pool = service.packetPool
            framing.batchBuffers = service.batchBuffers
        }
        context.fireChannelActive()
    }

    public func channelInactive(context: ChannelHandlerContext) {
        (try? context.pipeline.syncOperations.handler(type: PacketFramingHandler.self))?.onData = nil
        if let neighbour { service.detach(neighbour) }
        neighbour = nil
        context.fireChannelInactive()
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let neighbour else { return }
        switch unwrapInboundIn(data) {
        case let .control(tlv): service.received(tlv, from: neighbour)
        case let .data(packet): onData(packet, neighbour)
        case .keyProof: break  // answered by `KeyProofHandler`, which never passes one on
        }
    }

    /// The end of one socket read: flush what forwarding queued on other connections.
    public func channelReadComplete(context: ChannelHandlerContext) {
        service.flush()
        context.fireChannelReadComplete()
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Spec §2.1: TCP to an IPv6 peer costs 10, to an IPv4 (or v4-mapped) peer 15; QUIC 7 and
    /// 12, so that the routing prefers QUIC where both links exist.
    static func staticCost(of address: SocketAddress?, quic: Bool = false) -> UInt16 {
        let v4: Bool
        if case let .v6(v6)? = address {
            let bytes = withUnsafeBytes(of: v6.address.sin6_addr) { Array($0) }
            v4 = bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xFF && bytes[11] == 0xFF
        } else {
            v4 = true
        }
        switch (quic, v4) {
        case (false, false): return LinkCost.tcpIPv6
        case (false, true): return LinkCost.tcpIPv4
        case (true, false): return LinkCost.quicIPv6
        case (true, true): return LinkCost.quicIPv4
        }
    }
}
