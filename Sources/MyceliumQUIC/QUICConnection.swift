import CQUIC
public import NIOCore

/// One QUIC connection of a `QUICEndpoint` (spec §3.6): a stream for control packets and
/// DATAGRAM frames for data packets.
///
/// Flow: the endpoint hands each UDP payload for this connection to `receive` → ngtcp2 calls
/// back with handshake, stream bytes and datagrams → the handlers below run → `flush` drains
/// the packets ngtcp2 has to send and re-arms the timer. Sending (`send`, `sendDatagram`)
/// flushes too.
///
/// `@unchecked Sendable`: confined to the endpoint's event loop; entry points assert it
/// (`preconditionInEventLoop`), and the timer and C callbacks run on that loop.
public final class QUICConnection: @unchecked Sendable {
    /// What became of a connection.
    public enum CloseReason: Equatable, Sendable {
        /// Closed locally (`close()`), or the endpoint shut down.
        case local
        /// The peer closed it (CONNECTION_CLOSE received).
        case peerClosed
        /// The peer closed it, or a protocol or TLS failure ended it (ngtcp2's message).
        case failed(String)
        /// No packet within the idle timeout, or no handshake within the handshake timeout.
        case timedOut
    }

    public let remote: SocketAddress
    /// Whether we dialled it.
    public let isClient: Bool
    public let eventLoop: any EventLoop
    /// Connection key: the first 4 bytes of every connection id we issue for it.
    let key: UInt32
    // Owned: freed in `finish`. nil once closed.
    private var conn: OpaquePointer?
    private unowned let endpoint: QUICEndpoint
    private var timer: Scheduled<Void>?
    private var timerDeadline = UInt64.max
    private var stream: Int64?
    public private(set) var isEstablished = false
    /// The id a client chose for its first packets (accepted connections, until established).
    var initialId: [UInt8]?
    public private(set) var closeReason: CloseReason?

    /// The handshake completed (both sides).
    public var onEstablished: ((QUICConnection) -> Void)?
    /// Bytes on the control stream, in order.
    public var onStreamData: ((QUICConnection, UnsafeRawBufferPointer) -> Void)?
    /// One DATAGRAM frame's payload.
    public var onDatagram: ((QUICConnection, UnsafeRawBufferPointer) -> Void)?
    /// The connection is gone; called once.
    public var onClose: ((QUICConnection, CloseReason) -> Void)?

    /// Datagrams dropped because congestion control held them back or they can never fit.
    public private(set) var datagramsDropped = 0

    private func noteDropped() {
        datagramsDropped += 1
        endpoint.countDatagramDropped()
    }

    /// The endpoint this connection belongs to (for its counters).
    public var owner: QUICEndpoint { endpoint }

    /// Inside ngtcp2 (reading a packet or handling the timer), which must not be re-entered:
    /// handlers that send then only queue, and the work is done when ngtcp2 returns.
    private var inLibrary = false
    /// Datagrams sent by handlers while `inLibrary` (at most `maxDeferredDatagrams`).
    private var deferredDatagrams: [[UInt8]] = []
    private static let maxDeferredDatagrams = 256
    private var closeRequested = false

    init(endpoint: QUICEndpoint, key: UInt32, remote: SocketAddress, isClient: Bool) {
        self.endpoint = endpoint
        self.eventLoop = endpoint.eventLoop
        self.key = key
        self.remote = remote
        self.isClient = isClient
    }

    /// The callback table for the C layer; `ctx` is this object, unretained (the endpoint's
    /// tables keep it alive while the C connection exists).
    var callbacks: cq_callbacks {
        cq_callbacks(
            ctx: Unmanaged.passUnretained(self).toOpaque(),
            handshake_completed: { ctx in QUICConnection.from(ctx).didEstablish() },
            stream_open: { ctx, id in QUICConnection.from(ctx).didOpenStream(id) },
            stream_data: { ctx, id, data, len, _ in
                QUICConnection.from(ctx).didReceiveStream(id, UnsafeRawBufferPointer(start: data, count: len))
            },
            datagram: { ctx, data, len in
                QUICConnection.from(ctx).didReceiveDatagram(UnsafeRawBufferPointer(start: data, count: len))
            }
        )
    }

    private static func from(_ ctx: UnsafeMutableRawPointer?) -> QUICConnection {
        Unmanaged<QUICConnection>.fromOpaque(ctx!).takeUnretainedValue()
    }

    func attach(_ conn: OpaquePointer) { self.conn = conn }

    // MARK: callbacks from ngtcp2 (inside `receive` or `handleTimer`)

    private func didEstablish() {
        isEstablished = true
        endpoint.established(self)
        if isClient {
            var id: Int64 = -1
            if cq_conn_open_stream(conn, &id) == 0 { stream = id }
        }
        onEstablished?(self)
    }

    private func didOpenStream(_ id: Int64) {
        // The dialler's stream is the one stream of the connection (Rust accepts exactly one).
        if stream == nil { stream = id }
    }

    private func didReceiveStream(_ id: Int64, _ bytes: UnsafeRawBufferPointer) {
        guard id == stream, bytes.count > 0 else { return }
        onStreamData?(self, bytes)
    }

    private func didReceiveDatagram(_ bytes: UnsafeRawBufferPointer) {
        onDatagram?(self, bytes)
    }

    // MARK: driving

    func receive(_ packet: ByteBuffer, local: SocketAddress) {
        eventLoop.preconditionInEventLoop()
        guard let conn else { return }
        inLibrary = true
        let rv = packet.withUnsafeReadableBytes { bytes in
            local.withSockAddr { lp, ll in
                remote.withSockAddr { rp, rl in
                    cq_conn_read(conn, lp, socklen_t(ll), rp, socklen_t(rl), bytes.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                 bytes.count, Self.now())
                }
            }
        }
        inLibrary = false
        if rv != 0 {
            fail(rv)
            return
        }
        afterLibrary()
    }

    /// Does what handlers asked for while ngtcp2 was running.
    private func afterLibrary() {
        if closeRequested {
            close()
            return
        }
        // Stream bytes queued by the handlers first: a peer must see the stream before data.
        flush()
        let datagrams = deferredDatagrams
        deferredDatagrams.removeAll(keepingCapacity: true)
        for d in datagrams where conn != nil {
            d.withUnsafeBytes { _ = sendDatagram($0) }
        }
        flush()
    }

    /// Queues `bytes` on the control stream. False when no stream exists yet (before the
    /// handshake on the dialling side, before the peer's first bytes on the accepting side)
    /// or more than `limit` bytes wait unacknowledged: the caller treats the peer as stuck.
    @discardableResult
    public func send(_ bytes: UnsafeRawBufferPointer, limit: Int = 16 << 20) -> Bool {
        eventLoop.preconditionInEventLoop()
        guard let conn, let stream else { return false }
        let rv = cq_conn_stream_send(conn, stream, bytes.baseAddress?.assumingMemoryBound(to: UInt8.self), bytes.count, limit)
        guard rv == 0 else { return false }
        if !inLibrary { flush() }
        return true
    }

    /// Sends `payload` as one DATAGRAM frame; false when it was dropped (congestion, or larger
    /// than the peer or the path allows). Datagrams are never retransmitted.
    @discardableResult
    public func sendDatagram(_ payload: UnsafeRawBufferPointer) -> Bool {
        eventLoop.preconditionInEventLoop()
        guard let conn, isEstablished else { return false }
        guard payload.count <= maxDatagramPayload else {
            noteDropped()
            return false
        }
        if inLibrary {
            guard deferredDatagrams.count < Self.maxDeferredDatagrams else {
                noteDropped()
                return false
            }
            deferredDatagrams.append(Array(payload))
            return true
        }
        var accepted: Int32 = 0
        // A packet without our datagram (acknowledgements went first) leaves room to try again.
        for _ in 0..<2 {
            let n = endpoint.withPacketBuffer { out in
                cq_conn_write_datagram(conn, out.baseAddress, out.count, payload.baseAddress?.assumingMemoryBound(to: UInt8.self),
                                       payload.count, &accepted, Self.now())
            }
            if n < 0 {
                noteDropped()
                if !endpoint.isDatagramRefusal(n) { fail(Int32(n)) }
                return false
            }
            if n > 0 { endpoint.sendPacket(length: n, to: remote) }
            if accepted != 0 || n == 0 { break }
        }
        if accepted == 0 { noteDropped() }
        flush()
        return accepted != 0
    }

    /// Bytes queued on the stream and not yet acknowledged by the peer.
    public var streamBuffered: Int { conn.map { cq_conn_stream_buffered($0) } ?? 0 }

    /// The largest datagram payload that fits a packet and that the peer accepts (0 before the
    /// handshake, or when the peer takes no datagrams). Larger ones are refused by `sendDatagram`.
    public var maxDatagramPayload: Int { conn.map { Int(cq_conn_max_datagram_payload($0)) } ?? 0 }

    /// Sends everything ngtcp2 has ready, then re-arms the timer.
    func flush() {
        guard let conn else { return }
        let now = Self.now()
        // Bounded: a connection sends at most its congestion window per call.
        for _ in 0..<4096 {
            let n = endpoint.withPacketBuffer { out in cq_conn_write(conn, out.baseAddress, out.count, now) }
            if n < 0 {
                fail(Int32(n))
                return
            }
            if n == 0 { break }
            endpoint.sendPacket(length: n, to: remote)
        }
        endpoint.flushChannel()
        arm()
    }

    private func arm() {
        guard let conn else { return }
        let expiry = cq_conn_expiry(conn)
        guard expiry != timerDeadline else { return }
        timer?.cancel()
        timerDeadline = expiry
        guard expiry != UInt64.max else {
            timer = nil
            return
        }
        timer = eventLoop.scheduleTask(deadline: .uptimeNanoseconds(expiry)) { [weak self] in self?.handleTimer() }
    }

    private func handleTimer() {
        guard let conn else { return }
        timerDeadline = .max
        timer = nil
        inLibrary = true
        let rv = cq_conn_handle_expiry(conn, Self.now())
        inLibrary = false
        if rv != 0 {
            fail(rv)
            return
        }
        afterLibrary()
    }

    /// Closes the connection, telling the peer (application error 0).
    public func close() {
        eventLoop.preconditionInEventLoop()
        guard let conn else { return }
        if inLibrary {
            closeRequested = true
            return
        }
        let n = endpoint.withPacketBuffer { out in cq_conn_write_close(conn, out.baseAddress, out.count, 0, Self.now()) }
        if n > 0 {
            endpoint.sendPacket(length: n, to: remote)
            endpoint.flushChannel()
        }
        finish(.local)
    }

    private func fail(_ error: Int32) {
        guard let conn else { return }
        if cq_conn_is_idle_close(error) != 0 {
            endpoint.countTimeout()
            finish(.timedOut)
            return
        }
        if cq_conn_is_draining(error) != 0 {
            finish(.peerClosed)
            return
        }
        // Tell the peer why, unless the peer closed first (then ngtcp2 writes nothing).
        let n = endpoint.withPacketBuffer { out in cq_conn_write_close(conn, out.baseAddress, out.count, 0, Self.now()) }
        if n > 0 {
            endpoint.sendPacket(length: n, to: remote)
            endpoint.flushChannel()
        }
        finish(.failed(String(cString: cq_strerror(error))))
    }

    private func finish(_ reason: CloseReason) {
        guard let conn else { return }
        timer?.cancel()
        timer = nil
        cq_conn_free(conn)
        self.conn = nil
        closeReason = reason
        endpoint.forget(self)
        let handler = onClose
        onClose = nil
        onStreamData = nil
        onDatagram = nil
        onEstablished = nil
        handler?(self, reason)
    }

    /// ngtcp2's clock: monotonic nanoseconds, as NIO's deadlines.
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}
