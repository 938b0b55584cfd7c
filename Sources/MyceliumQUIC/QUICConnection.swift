import CQUIC
#if canImport(Glibc)
import Glibc
#endif
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

    /// Where the peer is: its address at the start, then wherever ngtcp2 moved the path after
    /// validating a new one (a NAT rebinding the peer's port).
    public private(set) var remote: SocketAddress
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
    /// The end of a burst of packets read by the endpoint, before this connection flushes.
    public var onReadComplete: ((QUICConnection) -> Void)?
    /// After every flush: the queues may have drained (writability).
    public var onFlushed: ((QUICConnection) -> Void)?

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
    private var closeRequested = false
    /// Datagrams waiting to be written, each with a 2-byte length, from `datagramQueueStart` on:
    /// congestion control holds them back rather than dropping them (as quinn's send buffer),
    /// up to `datagramQueueLimit` bytes.
    private var datagramQueue: [UInt8] = []
    private var datagramQueueStart = 0
    /// A burst of datagrams stopped at the window's margin and its closing frame is queued.
    private var probeQueued = false
    /// 1 MiB: measured on the benchmark's veth, 256 KiB dropped 3-6 % of a TCP stream's packets
    /// while congestion control held them (the inner TCP then backs off hard); 2 MiB dropped
    /// none at no more throughput. Rust's quinn buffers up to 16 MiB.
    public var datagramQueueLimit = 1 << 20

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

    /// RFC 5705 keying material of this connection's TLS session (no context): the same at
    /// both ends, different for every session. Nil before the handshake has completed.
    public func exportKeyingMaterial(label: String, length: Int) -> [UInt8]? {
        eventLoop.preconditionInEventLoop()
        guard let conn, isEstablished else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        let rc = label.utf8CString.withUnsafeBufferPointer { l in
            out.withUnsafeMutableBufferPointer { cq_conn_export_keying_material(conn, l.baseAddress, l.count - 1, $0.baseAddress, length) }
        }
        return rc == 0 ? out : nil
    }

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

    func receive(_ packet: ByteBuffer, local: SocketAddress, from source: SocketAddress) {
        eventLoop.preconditionInEventLoop()
        guard let conn else { return }
        inLibrary = true
        let rv = packet.withUnsafeReadableBytes { bytes in
            local.withSockAddr { lp, ll in
                source.withSockAddr { rp, rl in
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
        afterLibrary(reading: true)
    }

    /// Does what handlers asked for while ngtcp2 was running. After a packet read, the sending
    /// waits for the end of the read burst (`readComplete`); after a timer it happens now.
    private func afterLibrary(reading: Bool) {
        if closeRequested {
            close()
            return
        }
        if reading {
            endpoint.markDirty(self)
        } else {
            flush()
        }
    }

    /// The endpoint's read burst is over: handlers see it, then everything queued goes out.
    func readComplete() {
        guard conn != nil else { return }
        onReadComplete?(self)
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

    /// Queues `payload` as one DATAGRAM frame; it goes out at the next `flush` (at once with
    /// `flush: true`, unless inside a handler) as far as congestion control and pacing let it. False when
    /// it was dropped: larger than the peer or the path allows, or more than
    /// `datagramQueueLimit` bytes already wait. Datagrams are never retransmitted.
    @discardableResult
    public func sendDatagram(_ payload: UnsafeRawBufferPointer, flush now: Bool = true) -> Bool {
        eventLoop.preconditionInEventLoop()
        guard conn != nil, isEstablished else { return false }
        guard payload.count <= maxDatagramPayload, payload.count <= Int(UInt16.max),
              datagramQueue.count - datagramQueueStart + payload.count <= datagramQueueLimit else {
            noteDropped()
            return false
        }
        // Length-prefixed in one byte array: no allocation per datagram once it has grown.
        datagramQueue.append(UInt8(truncatingIfNeeded: payload.count >> 8))
        datagramQueue.append(UInt8(truncatingIfNeeded: payload.count))
        datagramQueue.append(contentsOf: payload)
        if now && !inLibrary { flush() }
        return true
    }

    /// Bytes of datagrams waiting for congestion control (with 2 bytes of length each).
    public var datagramBacklog: Int { datagramQueue.count - datagramQueueStart }

    /// Writes queued datagrams while congestion control lets them out.
    ///
    /// ngtcp2 0.12 counts DATAGRAM packets in flight but does not arm its probe timeout for them
    /// (they are ack-eliciting, not "PTO-eliciting"). When the last packets before a full
    /// congestion window were lost, no acknowledgement ever came and nothing was sent again: a
    /// stream over the overlay stalled for good at 1 % loss. So datagrams stop two packets short
    /// of a full window, and the packet that ends such a burst carries a frame ngtcp2
    /// retransmits (`cq_conn_queue_probe_frame`): while it is in flight the probe timeout runs,
    /// and its acknowledgement (or the probe's) lets ngtcp2 declare the lost ones lost.
    private func drainDatagrams(_ conn: OpaquePointer, now: UInt64) {
        while datagramQueueStart < datagramQueue.count {
            if cq_conn_cwnd_left(conn) < Self.windowMargin {
                if !probeQueued {
                    cq_conn_queue_probe_frame(conn)
                    probeQueued = true
                }
                break
            }
            probeQueued = false
            let length = Int(datagramQueue[datagramQueueStart]) << 8 | Int(datagramQueue[datagramQueueStart + 1])
            let body = datagramQueueStart + 2
            var accepted: Int32 = 0
            var written = 0
            // A packet may go without the datagram (acknowledgements first): then once more.
            for _ in 0..<2 {
                let n = datagramQueue.withUnsafeBufferPointer { q in
                    endpoint.withPacketBuffer { out in
                        cq_conn_write_datagram(conn, out.baseAddress, out.count, q.baseAddress! + body, length, &accepted, now)
                    }
                }
                if n < 0 {
                    if !endpoint.isDatagramRefusal(n) {
                        fail(Int32(n))
                        return
                    }
                    accepted = 1  // can never go: dropped below
                    noteDropped()
                    break
                }
                written = n
                if n > 0 { send(length: n) }
                if accepted != 0 || n == 0 { break }
            }
            guard accepted != 0 else {
                _ = written
                break  // congestion or pacing: the rest waits for acknowledgements or the timer
            }
            datagramQueueStart = body + length
        }
        if datagramQueueStart == datagramQueue.count {
            datagramQueue.removeAll(keepingCapacity: true)
            datagramQueueStart = 0
        } else if datagramQueueStart > datagramQueue.count / 2 {
            datagramQueue.removeSubrange(0..<datagramQueueStart)
            datagramQueueStart = 0
        }
    }

    /// Bytes queued on the stream and not yet acknowledged by the peer.
    public var streamBuffered: Int { conn.map { cq_conn_stream_buffered($0) } ?? 0 }

    /// The largest datagram payload that fits a packet and that the peer accepts (0 before the
    /// handshake, or when the peer takes no datagrams). Larger ones are refused by `sendDatagram`.
    public var maxDatagramPayload: Int { conn.map { Int(cq_conn_max_datagram_payload($0)) } ?? 0 }

    /// Sends queued datagrams and everything ngtcp2 has ready, then re-arms the timer.
    public func flush() {
        eventLoop.preconditionInEventLoop()
        guard let conn, !inLibrary else { return }
        let now = Self.now()
        drainDatagrams(conn, now: now)
        guard self.conn != nil else { return }
        // Bounded: a connection sends at most its congestion window per call.
        for _ in 0..<4096 {
            let n = endpoint.withPacketBuffer { out in cq_conn_write(conn, out.baseAddress, out.count, now) }
            if n < 0 {
                fail(Int32(n))
                return
            }
            if n == 0 { break }
            send(length: n)
        }
        cq_conn_update_tx_time(conn, now)
        endpoint.flushChannel()
        arm()
        onFlushed?(self)
    }

    /// Schedules the timer for ngtcp2's next expiry (loss detection, acknowledgement delay,
    /// pacing of held-back packets, keep-alive, idle), unless one already runs no later: moving
    /// it on every packet sent cost a scheduled task each; firing early costs one empty call.
    private func arm() {
        guard let conn else { return }
        let expiry = cq_conn_expiry(conn)
        guard expiry < timerDeadline else { return }
        timer?.cancel()
        timerDeadline = expiry
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
        afterLibrary(reading: false)
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
            send(length: n)
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
        if cq_conn_is_drop(error) != 0 {
            finish(.failed(String(cString: cq_strerror(error))))
            return
        }
        // Tell the peer why, unless the peer closed first (then ngtcp2 writes nothing).
        let n = endpoint.withPacketBuffer { out in cq_conn_write_close(conn, out.baseAddress, out.count, 0, Self.now()) }
        if n > 0 {
            send(length: n)
            endpoint.flushChannel()
        }
        finish(.failed(String(cString: cq_strerror(error))))
    }

    /// Forgets the connection without telling the peer (`QUICEndpoint.abandon`).
    func abandon() { finish(.local) }

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
        onReadComplete = nil
        onFlushed = nil
        handler?(self, reason)
    }

    /// Room left in the congestion window for ngtcp2's own packets (see `drainDatagrams`).
    static let windowMargin: UInt64 = 2 * 1504

    /// Sends the packet ngtcp2 just wrote into the endpoint's buffer, to the path it chose.
    private func send(length: Int) {
        if let conn {
            var storage = sockaddr_storage()
            var storageLength: socklen_t = 0
            if cq_conn_take_moved_remote(conn, &storage, &storageLength) != 0, let moved = Self.address(storage) { remote = moved }
        }
        endpoint.sendPacket(length: length, to: remote)
    }

    static func address(_ storage: sockaddr_storage) -> SocketAddress? {
        switch Int32(storage.ss_family) {
        case AF_INET6: return SocketAddress(withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in6.self) }, host: "")
        case AF_INET: return SocketAddress(withUnsafeBytes(of: storage) { $0.load(as: sockaddr_in.self) }, host: "")
        default: return nil
        }
    }

    /// ngtcp2's clock: monotonic nanoseconds, as NIO's deadlines.
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}
