import MyceliumCore
import MyceliumQUIC
import NIOCore

/// A QUIC peer connection as a NIO channel (spec §3.6), so that it gets the pipeline of a TCP
/// peer (`PacketFramingHandler` → `PeerHandler`) and the router and peer manager treat it as any
/// other connection.
///
/// Flow: stream bytes from the connection → `fireChannelRead(ByteBuffer)` → the framing handler
/// decodes control (and any data) packets, as on TCP. A DATAGRAM frame holds one whole framed
/// packet → `PacketFramingHandler.receiveDatagram` (a datagram that is not exactly one valid
/// frame is counted and dropped). Outbound, the framing handler's batches (control packets) go
/// on the stream; data packets go as datagrams through `sendData` (the router's data sink), on
/// the stream only when one is larger than the path's datagram room.
///
/// Active once the stream exists: the dialler opens it after the handshake; the acceptor sees
/// it with the dialler's first bytes, and closes the connection if that takes longer than
/// `streamTimeout` (Rust gives 10 s for handshake and stream).
///
/// `@unchecked Sendable`: confined to the connection's event loop (the datapath's); every
/// entry point runs there (NIO calls the core on the loop; the connection's handlers run there).
final class QUICPeerChannel: Channel, ChannelCore, @unchecked Sendable {
    let connection: QUICConnection
    let eventLoop: any EventLoop
    let allocator = ByteBufferAllocator()
    let localAddress: SocketAddress?
    var remoteAddress: SocketAddress? { connection.remote }
    var parent: (any Channel)? { nil }
    var _channelCore: any ChannelCore { self }
    private var _pipeline: ChannelPipeline!
    var pipeline: ChannelPipeline { _pipeline }
    private let closePromise: EventLoopPromise<Void>
    var closeFuture: EventLoopFuture<Void> { closePromise.futureResult }
    private(set) var isActive = false
    private var isClosed = false
    private var lastWritable = true
    private var streamTimer: Scheduled<Void>?
    private var scratch: [UInt8] = []
    /// Datagrams that arrived before the stream (at most `maxEarlyDatagrams`).
    private var early: [[UInt8]] = []
    static let maxEarlyDatagrams = 16

    /// Rust's time for a dialler's handshake and stream.
    static let streamTimeout = TimeAmount.seconds(10)

    /// Control bytes may wait on the stream unacknowledged up to this much; beyond it the peer
    /// is not reading and is closed (as a TCP peer over its outbox limit).
    static let streamLimit = PeerTuning.outboxHighWater + PeerTuning.outboxOverflowBytes

    init(connection: QUICConnection, localAddress: SocketAddress) {
        self.connection = connection
        self.eventLoop = connection.eventLoop
        self.localAddress = localAddress
        closePromise = connection.eventLoop.makePromise()
        _pipeline = ChannelPipeline(channel: self)
        connection.onEstablished = { [unowned self] _ in
            if connection.isClient { becomeActive() }
        }
        connection.onStreamData = { [unowned self] _, bytes in
            guard !isClosed else { return }
            if !isActive { becomeActive() }
            var buffer = allocator.buffer(capacity: bytes.count)
            buffer.writeBytes(bytes)
            pipeline.syncOperations.fireChannelRead(NIOAny(buffer))
        }
        // Once per burst of packets read, as a socket channel: the router then flushes what
        // forwarding queued (TUN writes coalesced, batches to other peers).
        connection.onReadComplete = { [unowned self] _ in
            if isActive { pipeline.syncOperations.fireChannelReadComplete() }
        }
        connection.onDatagram = { [unowned self] _, bytes in
            guard !isClosed else { return }
            guard isActive else {
                // Before the stream (reordered on the way): kept for the activation, a few.
                if early.count < Self.maxEarlyDatagrams { early.append(Array(bytes)) } else { connection.owner.countBadDatagram() }
                return
            }
            deliver(bytes)
        }
        connection.onClose = { [unowned self] _, _ in becomeClosed() }
        connection.onFlushed = { [unowned self] _ in checkWritability() }
        // A dial that failed at its first packet closed before these handlers were set.
        if connection.closeReason != nil { eventLoop.execute { self.becomeClosed() } }
        if !connection.isClient {
            streamTimer = eventLoop.scheduleTask(in: Self.streamTimeout) { [weak self] in
                guard let self, !self.isActive, !self.isClosed else { return }
                self.connection.owner.countStreamTimeout()
                self.connection.close()
            }
        }
    }

    /// Tells the pipeline when `isWritable` flips, as a socket channel does: the framing
    /// handler's outbox accounting and stall check depend on it.
    private func checkWritability() {
        let now = isWritable
        guard now != lastWritable, isActive else { return }
        lastWritable = now
        pipeline.syncOperations.fireChannelWritabilityChanged()
    }

    private func deliver(_ bytes: UnsafeRawBufferPointer) {
        guard let framing = try? pipeline.syncOperations.handler(type: PacketFramingHandler.self),
              let context = try? pipeline.syncOperations.context(handlerType: PacketFramingHandler.self) else { return }
        if !framing.receiveDatagram(bytes, context: context) { connection.owner.countBadDatagram() }
    }

    private func becomeActive() {
        guard !isActive, !isClosed else { return }
        isActive = true
        streamTimer?.cancel()
        streamTimer = nil
        pipeline.syncOperations.fireChannelRegistered()
        pipeline.syncOperations.fireChannelActive()
        let waiting = early
        early = []
        for d in waiting where isActive { d.withUnsafeBytes { deliver($0) } }
    }

    private func becomeClosed() {
        guard !isClosed else { return }
        isClosed = true
        streamTimer?.cancel()
        streamTimer = nil
        if isActive {
            isActive = false
            pipeline.syncOperations.fireChannelInactive()
            pipeline.syncOperations.fireChannelUnregistered()
        }
        // Handlers go (and see `handlerRemoved`) as on a socket channel.
        eventLoop.execute { self.removeHandlers(pipeline: self.pipeline) }
        closePromise.succeed()
    }

    /// A data packet from the router, as one DATAGRAM frame. One too large for the path's
    /// datagram room goes on the stream (Rust reads data packets from either).
    func sendData(_ packet: DataPacket, framing: PacketFramingHandler, context: ChannelHandlerContext) {
        eventLoop.assertInEventLoop()
        scratch.removeAll(keepingCapacity: true)
        packet.appendFrameHeader(to: &scratch)
        scratch.append(contentsOf: packet.payload)
        guard scratch.count <= connection.maxDatagramPayload else {
            framing.enqueue(packet, context: context)
            return
        }
        // Out at the batch's flush (`flush0`), as TCP peers' batches.
        let sent = scratch.withUnsafeBytes { connection.sendDatagram($0, flush: false) }
        framing.countDatagram(bytes: scratch.count, sent: sent)
        checkWritability()
    }

    // MARK: Channel

    /// Above the outbox high-water mark on the stream, or with the datagram queue (datagrams
    /// congestion control holds back) nearly full, the router drops data for this peer
    /// (`.busy`, counted as `peer_busy`), as for a TCP peer.
    var isWritable: Bool {
        !isClosed && connection.streamBuffered < PeerTuning.outboxHighWater && connection.datagramBacklog < connection.datagramQueueLimit - 2048
    }

    func setOption<Option: ChannelOption>(_ option: Option, value: Option.Value) -> EventLoopFuture<Void> {
        eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    func getOption<Option: ChannelOption>(_ option: Option) -> EventLoopFuture<Option.Value> {
        eventLoop.makeFailedFuture(ChannelError.operationUnsupported)
    }

    // MARK: ChannelCore (on the loop)

    func localAddress0() throws -> SocketAddress {
        guard let localAddress else { throw ChannelError.operationUnsupported }
        return localAddress
    }

    func remoteAddress0() throws -> SocketAddress { connection.remote }

    func register0(promise: EventLoopPromise<Void>?) { promise?.succeed() }
    func registerAlreadyConfigured0(promise: EventLoopPromise<Void>?) { promise?.succeed() }
    func bind0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }
    func connect0(to: SocketAddress, promise: EventLoopPromise<Void>?) { promise?.fail(ChannelError.operationUnsupported) }

    /// A batch from the framing handler: control packets (and data too large for a datagram).
    func write0(_ data: NIOAny, promise: EventLoopPromise<Void>?) {
        let buffer = unwrapData(data, as: ByteBuffer.self)
        guard !isClosed else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        let queued = buffer.withUnsafeReadableBytes { connection.send($0, limit: Self.streamLimit) }
        guard queued else {
            promise?.fail(ChannelError.outputClosed)
            connection.close()
            return
        }
        checkWritability()
        promise?.succeed()
    }

    func flush0() { connection.flush() }
    func read0() {}

    func close0(error: any Error, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard !isClosed else {
            promise?.fail(ChannelError.alreadyClosed)
            return
        }
        connection.close()
        becomeClosed()  // the connection reports its close synchronously; this is a no-op then
        promise?.succeed()
    }

    func triggerUserOutboundEvent0(_ event: Any, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.operationUnsupported)
    }

    func channelRead0(_ data: NIOAny) {}
    func errorCaught0(error: any Error) {}
}
