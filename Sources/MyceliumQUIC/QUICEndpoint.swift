import CQUIC
public import NIOCore
import NIOPosix

/// One UDP socket for every QUIC connection of a node, listening and dialling alike (spec
/// §3.6: Rust binds `[::]:9651` and dials from it too).
///
/// Flow: a datagram arrives → its destination connection id names the connection (the first
/// 4 bytes of every id we issue are the connection's key; a client's first packets carry an
/// id it chose, kept until the handshake completes) → `QUICConnection.receive`. A client
/// Initial for no connection starts a server connection, at most `maxPendingHandshakes` at
/// once. Anything else is counted and dropped.
///
/// `@unchecked Sendable`: all mutable state is confined to `eventLoop`; every entry point
/// asserts it (`preconditionInEventLoop`).
public final class QUICEndpoint: @unchecked Sendable {
    /// Packets dropped before reaching a connection.
    public struct Counters: Sendable, Equatable {
        /// Not a QUIC packet (no parsable header).
        public var malformed = 0
        /// For no connection we have, and not a client Initial.
        public var unknownConnection = 0
        /// Client Initials refused: `maxPendingHandshakes` handshakes were already running.
        public var handshakesRefused = 0
        /// Client Initials the library refused (bad version or layout) or could not start.
        public var initialsRejected = 0
        /// Datagrams not sent: congestion control held them back, or too large for the path.
        public var datagramsDropped = 0
        /// Datagrams received that did not hold exactly one valid packet (`countBadDatagram`).
        public var datagramsMalformed = 0
        /// Connections closed because no handshake completed within the handshake timeout, or
        /// nothing arrived within the idle timeout.
        public var timeouts = 0
        /// Accepted connections closed because the dialler opened no stream in time
        /// (`countStreamTimeout`).
        public var streamTimeouts = 0
        /// Stateless resets sent: answers to packets for connections we do not have (one of
        /// before a restart), so that the peer closes it at once instead of after 60 s.
        public var statelessResetsSent = 0

        public init() {}
    }

    public let eventLoop: any EventLoop
    /// The socket's bound address (the local side of every connection's path).
    public private(set) var localAddress: SocketAddress
    /// Handshakes of accepted connections running at once (Rust: 10).
    public var maxPendingHandshakes = 10
    /// A connection a peer started: set its handlers here (it has sent only an Initial).
    public var onAccept: ((QUICConnection) -> Void)?
    public private(set) var counters = Counters()

    private let tls: OpaquePointer
    private var params: cq_params
    private var channel: (any Channel)?
    private var byKey: [UInt32: QUICConnection] = [:]
    /// Accepted connections until their handshake completes, by the id the client chose.
    private var byInitialId: [[UInt8]: QUICConnection] = [:]
    private let packet = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 1 << 16)
    private var unflushed = false
    /// Connections that read packets in this read burst; they send at its end.
    private var dirty: [QUICConnection] = []
    /// Packets for unknown connections looked at (offered to the sender's connections as a
    /// possible stateless reset, else answered with one): `resetBurst`, then `resetsPerSecond`.
    private var resetAllowance = Double(QUICEndpoint.resetBurst)
    private var resetRefilled = NIODeadline.now()
    static let resetBurst = 64
    static let resetsPerSecond = 32.0

    /// Binds `host:port` on `eventLoop`. `subjectAltName`: the router id's text form, put in the
    /// self-signed certificate made for this endpoint (as Rust does at every start).
    /// `idleTimeout` and `handshakeTimeout` in nanoseconds (0: 60 s and 10 s). `maxUDPPayload`:
    /// the largest UDP payload sent (as far as the peer accepts it). 1504 fits the largest
    /// framed data packet (1472 bytes, from a 1400-byte TUN packet) in one DATAGRAM frame with
    /// an 8-byte connection id; Rust sends up to 1500. On a 1500-byte link the kernel fragments
    /// such datagrams, as it does Rust's.
    /// `socketMark`: the SO_MARK option's number and the mark for the socket (`--firewall-mark`).
    /// `resetSecret`: what stateless reset tokens are derived from (32 bytes; random if nil).
    /// One that survives restarts (derived from the node key) lets this endpoint reset a
    /// peer's connection of before a restart, so the peer notices at its next packet.
    public static func bind(host: String, port: Int, on eventLoop: any EventLoop, subjectAltName: String,
                            idleTimeout: UInt64 = 0, handshakeTimeout: UInt64 = 0,
                            maxUDPPayload: UInt32 = 1504, socketMark: (option: Int32, mark: Int)? = nil,
                            resetSecret: [UInt8]? = nil) -> EventLoopFuture<QUICEndpoint> {
        var message = [CChar](repeating: 0, count: 256)
        guard let tls = cq_tls_new(subjectAltName, &message, message.count) else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            return eventLoop.makeFailedFuture(QUICError.credentials(text))
        }
        if let resetSecret { cq_tls_set_reset_secret(tls, resetSecret, resetSecret.count) }
        let params = cq_params(idle_timeout_ns: idleTimeout, handshake_timeout_ns: handshakeTimeout, stream_window: 0,
                               connection_window: 0, max_udp_payload: maxUDPPayload)
        let endpoint = QUICEndpoint(eventLoop: eventLoop, tls: tls, params: params)
        // No SO_REUSEADDR: on UDP it would let a second node bind the same port and take its packets.
        var bootstrap = DatagramBootstrap(group: eventLoop)
            // Bursts of up to 32 datagrams per wake-up: the connections then answer
            // (acknowledgements, the TUN writes of what arrived) once per burst. (NIO's vector
            // reads, recvmmsg, stalled the handshakes here: not used.)
            .channelOption(.maxMessagesPerRead, value: 32)
        if let socketMark {
            // Set before bind, so every packet carries it.
            bootstrap = bootstrap.channelOption(.socketOption(.init(rawValue: socketMark.option)), value: socketMark.mark)
        }
        return bootstrap
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Reader(endpoint)) }
            }
            .bind(host: host, port: port)
            .map { channel in
                endpoint.channel = channel
                endpoint.localAddress = channel.localAddress ?? endpoint.localAddress
                return endpoint
            }
    }

    private init(eventLoop: any EventLoop, tls: OpaquePointer, params: cq_params) {
        self.eventLoop = eventLoop
        self.tls = tls
        self.params = params
        self.localAddress = try! SocketAddress(ipAddress: "::", port: 0)
    }

    deinit {
        cq_tls_free(tls)
        packet.deallocate()
    }

    /// The port the socket is bound to.
    public var port: Int { localAddress.port ?? 0 }

    /// Connections open now (dialled and accepted).
    public var connectionCount: Int { byKey.count }

    /// The connections open now, in no particular order (on the loop).
    public var connections: [QUICConnection] {
        eventLoop.preconditionInEventLoop()
        return Array(byKey.values)
    }

    /// Dials `remote`. Set the handlers before the returned future's callbacks run: the
    /// handshake needs at least one round trip, so setting them at once is in time.
    public func connect(to remote: SocketAddress) throws -> QUICConnection {
        eventLoop.preconditionInEventLoop()
        let c = QUICConnection(endpoint: self, key: freshKey(), remote: remote, isClient: true)
        var error: Int32 = 0
        let conn = localAddress.withSockAddr { lp, ll in
            remote.withSockAddr { rp, rl in
                withUnsafePointer(to: params) { p in
                    cq_conn_client(tls, c.key, lp, socklen_t(ll), rp, socklen_t(rl), p, c.callbacks, QUICConnection.now(), &error)
                }
            }
        }
        guard let conn else { throw QUICError.library(String(cString: cq_strerror(error))) }
        c.attach(conn)
        byKey[c.key] = c
        c.flush()
        return c
    }

    /// Closes every connection (telling the peers) and the socket.
    public func close() -> EventLoopFuture<Void> {
        eventLoop.submit {
            for c in Array(self.byKey.values) { c.close() }
        }.flatMap {
            self.channel?.close() ?? self.eventLoop.makeSucceededVoidFuture()
        }
    }

    /// Closes the socket without a word to the peers, as a crash would (tests of restarts).
    func abandon() -> EventLoopFuture<Void> {
        eventLoop.submit {
            for c in Array(self.byKey.values) { c.abandon() }
        }.flatMap {
            self.channel?.close() ?? self.eventLoop.makeSucceededVoidFuture()
        }
    }

    // MARK: receiving

    fileprivate func didReceive(_ envelope: AddressedEnvelope<ByteBuffer>) {
        eventLoop.preconditionInEventLoop()
        // The destination id on the stack: this runs for every packet.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { dcid in
            var dcidLength = 0
            var isLong: Int32 = 0
            let rv = envelope.data.withUnsafeReadableBytes { bytes -> Int32 in
                guard let base = bytes.baseAddress, bytes.count > 0 else { return -1 }
                return cq_packet_dcid(base.assumingMemoryBound(to: UInt8.self), bytes.count, dcid.baseAddress, &dcidLength, &isLong)
            }
            guard rv == 0 else {
                counters.malformed += 1
                return
            }
            if dcidLength == Int(CQ_CID_LEN) {
                let key = UInt32(dcid[0]) << 24 | UInt32(dcid[1]) << 16 | UInt32(dcid[2]) << 8 | UInt32(dcid[3])
                if let c = byKey[key] {
                    c.receive(envelope.data, local: localAddress, from: envelope.remoteAddress)
                    return
                }
            }
            guard isLong != 0 else {
                counters.unknownConnection += 1
                unknownShortPacket(envelope, dcid: UnsafeBufferPointer(rebasing: dcid[0..<dcidLength]))
                return
            }
            let chosen = Array(dcid.prefix(dcidLength))
            if let c = byInitialId[chosen] {
                c.receive(envelope.data, local: localAddress, from: envelope.remoteAddress)
                return
            }
            accept(envelope, initialId: chosen)
        }
    }

    /// A short-header packet for no connection of ours (within the reset rate): a stateless
    /// reset from a peer for one of our connections to it (its destination id is random, so
    /// only the connections with that peer can tell, by its token), or a packet for a
    /// connection of before our restart, answered with a stateless reset (RFC 9000 §10.3).
    private func unknownShortPacket(_ envelope: AddressedEnvelope<ByteBuffer>, dcid: UnsafeBufferPointer<UInt8>) {
        let now = NIODeadline.now()
        let elapsed = Double((now - resetRefilled).nanoseconds) / 1e9
        resetRefilled = now
        resetAllowance = min(Double(Self.resetBurst), resetAllowance + elapsed * Self.resetsPerSecond)
        guard resetAllowance >= 1 else { return }
        resetAllowance -= 1
        let withPeer = byKey.values.filter { $0.remote == envelope.remoteAddress }
        for c in withPeer { c.receive(envelope.data, local: localAddress, from: envelope.remoteAddress) }
        // It was a reset (it ended one of them): not answered. Otherwise it was for a connection
        // we do not know, perhaps one of before a restart, while a new one with this peer lives.
        if withPeer.contains(where: { $0.closeReason != nil }) { return }
        let n = cq_write_stateless_reset(tls, dcid.baseAddress, dcid.count, envelope.data.readableBytes, packet.baseAddress, packet.count)
        guard n > 0 else { return }
        counters.statelessResetsSent += 1
        sendPacket(length: n, to: envelope.remoteAddress)
        flushChannel()
    }

    /// The end of a read burst: every connection that read sends what it has.
    fileprivate func readComplete() {
        let burst = dirty
        dirty.removeAll(keepingCapacity: true)
        for c in burst { c.readComplete() }
        flushChannel()
    }

    func markDirty(_ c: QUICConnection) {
        if dirty.last !== c, !dirty.contains(where: { $0 === c }) { dirty.append(c) }
    }

    private func accept(_ envelope: AddressedEnvelope<ByteBuffer>, initialId: [UInt8]) {
        let acceptable = envelope.data.withUnsafeReadableBytes { bytes in
            cq_accept(bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count) == 0
        }
        guard acceptable else {
            counters.initialsRejected += 1
            return
        }
        guard byInitialId.count < maxPendingHandshakes else {
            counters.handshakesRefused += 1
            return
        }
        let c = QUICConnection(endpoint: self, key: freshKey(), remote: envelope.remoteAddress, isClient: false)
        var error: Int32 = 0
        let conn = envelope.data.withUnsafeReadableBytes { bytes in
            localAddress.withSockAddr { lp, ll in
                envelope.remoteAddress.withSockAddr { rp, rl in
                    withUnsafePointer(to: params) { p in
                        cq_conn_server(tls, c.key, lp, socklen_t(ll), rp, socklen_t(rl),
                                       bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), bytes.count, p, c.callbacks,
                                       QUICConnection.now(), &error)
                    }
                }
            }
        }
        guard let conn else {
            counters.initialsRejected += 1
            return
        }
        c.attach(conn)
        byKey[c.key] = c
        byInitialId[initialId] = c
        c.initialId = initialId
        onAccept?(c)
        c.receive(envelope.data, local: localAddress, from: envelope.remoteAddress)
    }

    /// The handshake of `c` completed: it is no longer pending, and the client now uses our ids.
    func established(_ c: QUICConnection) {
        if let id = c.initialId {
            byInitialId[id] = nil
            c.initialId = nil
        }
    }

    func forget(_ c: QUICConnection) {
        if byKey[c.key] === c { byKey[c.key] = nil }
        if let id = c.initialId, byInitialId[id] === c { byInitialId[id] = nil }
    }

    // MARK: sending (for connections)

    func withPacketBuffer<R>(_ body: (UnsafeMutableBufferPointer<UInt8>) -> R) -> R { body(packet) }

    /// Sends the first `length` bytes of the packet buffer to `remote` (flushed by `flushChannel`).
    func sendPacket(length: Int, to remote: SocketAddress) {
        guard let channel else { return }
        let data = channel.allocator.buffer(bytes: UnsafeBufferPointer(rebasing: packet[0..<length]))
        channel.write(AddressedEnvelope(remoteAddress: remote, data: data), promise: nil)
        unflushed = true
    }

    func flushChannel() {
        guard unflushed, let channel else { return }
        unflushed = false
        channel.flush()
    }

    func countDatagramDropped() { counters.datagramsDropped += 1 }
    func countTimeout() { counters.timeouts += 1 }

    /// A datagram that held no single valid packet (the layer above parses them).
    public func countBadDatagram() {
        eventLoop.preconditionInEventLoop()
        counters.datagramsMalformed += 1
    }

    /// An accepted connection whose stream never appeared (the layer above times it out).
    public func countStreamTimeout() {
        eventLoop.preconditionInEventLoop()
        counters.streamTimeouts += 1
    }

    func isDatagramRefusal(_ error: Int) -> Bool { cq_conn_is_datagram_refusal(Int32(error)) != 0 }

    private func freshKey() -> UInt32 {
        // Bounded: the table holds far fewer keys than 2³², so a free one is found at once.
        for _ in 0..<64 {
            let k = UInt32.random(in: 0...UInt32.max)
            if byKey[k] == nil { return k }
        }
        preconditionFailure("no free connection key")
    }

}

public enum QUICError: Error, Equatable {
    /// The certificate or TLS credentials could not be made.
    case credentials(String)
    /// ngtcp2 refused to create a connection.
    case library(String)
}

private final class Reader: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let endpoint: QUICEndpoint
    init(_ endpoint: QUICEndpoint) { self.endpoint = endpoint }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        endpoint.didReceive(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        endpoint.readComplete()
    }
}
