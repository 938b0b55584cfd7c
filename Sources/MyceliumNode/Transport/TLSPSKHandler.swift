import COpenSSL
public import Logging
public import NIOCore

/// TLS 1.3 with an external PSK over a peer's TCP stream (spec §3.5), driving OpenSSL through
/// two memory BIOs; it sits first in the pipeline, below the framing.
///
/// Flow, inbound: ciphertext → `rbio` → `SSL_do_handshake` until it completes, then `SSL_read`
/// → plaintext up the pipeline. Outbound: plaintext → `SSL_write` → `wbio`, drained into one
/// buffer per flush (so a burst of packets becomes one socket write). Writes made before the
/// handshake completes wait in `pending`, and `channelActive` is passed on only once it has
/// completed: the peer is not a neighbour, and no overlay packet leaves, before the other side
/// has proven it holds the network's key. A failed or stalled handshake closes the connection
/// and is logged with its reason. Closing sends close_notify first. Backpressure comes for
/// free: the ciphertext goes out through the channel's own write buffer, whose writability
/// the layers above see.
public final class TLSPSKHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public enum Role: Sendable { case client, server }

    enum State { case handshaking, open, closing, closed }

    /// Why a connection was refused, for logs and tests.
    public struct HandshakeFailed: Error, CustomStringConvertible {
        public let description: String
    }

    private static let readChunk = 16 * 1024

    private let ssl: OpaquePointer
    private let rbio: OpaquePointer
    private let wbio: OpaquePointer
    private let role: Role
    private let context: TLSPSKContext  // keeps the SSL_CTX alive as long as the connection
    private let logger: Logger
    private let handshakeTimeout: TimeAmount
    private let onFailure: () -> Void
    private let audit: AuditLog?
    private var state = State.handshaking
    private var pending: [(ByteBuffer, EventLoopPromise<Void>?)] = []
    /// Reused for every `SSL_read`: the framing handler copies what it is handed, so the buffer
    /// is unshared again by the next read and clearing it allocates nothing (one allocation per
    /// TLS record before).
    private var plaintext: ByteBuffer?
    private var unflushedPromises: [EventLoopPromise<Void>] = []
    private var timeout: Scheduled<Void>?
    private var activeFired = false

    /// `onFailure` runs on the channel's loop when a handshake or session fails.
    /// With `audit`, refusals go to the rate-limited audit log instead of a warning each (a
    /// handshake flood must not flood the journal).
    public init(context: TLSPSKContext, role: Role, logger: Logger, audit: AuditLog? = nil,
                handshakeTimeout: TimeAmount = .seconds(10), onFailure: @escaping () -> Void = {}) throws {
        var rbio: OpaquePointer?, wbio: OpaquePointer?
        guard let ssl = cmyc_psk_connection_new(context.context, role == .server ? 1 : 0, &rbio, &wbio) else {
            throw HandshakeFailed(description: "cannot create a TLS connection: \(TLSPSKContext.openSSLError())")
        }
        self.ssl = ssl
        self.rbio = rbio!
        self.wbio = wbio!
        self.role = role
        self.context = context
        self.logger = logger
        self.handshakeTimeout = handshakeTimeout
        self.onFailure = onFailure
        self.audit = audit
    }

    deinit { SSL_free(ssl) }

    /// The negotiated suite, e.g. `TLS_AES_128_GCM_SHA256` (nil before the handshake).
    public var cipherSuite: String? {
        guard state != .handshaking, let cipher = SSL_get_current_cipher(ssl) else { return nil }
        return String(cString: SSL_CIPHER_get_name(cipher))
    }

    // MARK: inbound

    /// RFC 5705 keying material of the established session (no context): the same at both
    /// ends, different for every session. Nil before the handshake has completed.
    func exportKeyingMaterial(label: String, length: Int) -> [UInt8]? {
        guard state == .open else { return nil }
        var out = [UInt8](repeating: 0, count: length)
        let rc = label.utf8CString.withUnsafeBufferPointer { l in
            out.withUnsafeMutableBufferPointer { SSL_export_keying_material(ssl, $0.baseAddress, length, l.baseAddress, l.count - 1, nil, 0, 0) }
        }
        return rc == 1 ? out : nil
    }

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { begin(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        begin(context: context)  // passed on when the handshake completes
    }

    public func channelInactive(context: ChannelHandlerContext) {
        state = .closed
        timeout?.cancel()
        failPending(ChannelError.ioOnClosedChannel)
        // Layers above saw channelActive only for an established session.
        if activeFired { context.fireChannelInactive() }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state == .handshaking || state == .open else { return }
        let buffer = unwrapInboundIn(data)
        let written = buffer.withUnsafeReadableBytes { BIO_write(rbio, $0.baseAddress, Int32($0.count)) }
        guard written == buffer.readableBytes else {
            fail(context: context, reason: "cannot buffer received TLS data")
            return
        }
        if state == .handshaking { handshake(context: context) }
        if state == .open { readPlaintext(context: context) }
    }

    private func begin(context: ChannelHandlerContext) {
        guard state == .handshaking, timeout == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timeout = context.eventLoop.scheduleTask(in: handshakeTimeout) {
            let (handler, context) = bound.value
            if handler.state == .handshaking { handler.fail(context: context, reason: "handshake timed out") }
        }
        if role == .client { handshake(context: context) }
    }

    private func handshake(context: ChannelHandlerContext) {
        ERR_clear_error()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 {
            state = .open
            timeout?.cancel()
            flushCiphertext(context: context)
            logger.debug("TLS session established", metadata: ["peer": "\(Self.peerName(context))",
                                                               "suite": "\(cipherSuite ?? "?")"])
            activeFired = true
            context.fireChannelActive()
            let queued = pending
            pending = []
            for (buffer, promise) in queued where state == .open { write(context: context, data: wrapOutboundOut(buffer), promise: promise) }
            if !queued.isEmpty { flush(context: context) }
            return
        }
        switch SSL_get_error(ssl, rc) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            flushCiphertext(context: context)
        default:
            let reason = cmyc_psk_identity_mismatch(ssl) != 0
                ? "the peer offered another network name" : TLSPSKContext.openSSLError()
            fail(context: context, reason: reason)
        }
    }

    private func readPlaintext(context: ChannelHandlerContext) {
        ERR_clear_error()
        while state == .open {
            var rc: Int32 = 0
            var buffer = plaintext.take() ?? context.channel.allocator.buffer(capacity: Self.readChunk)
            buffer.clear()
            buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.readChunk) { out in
                rc = SSL_read(ssl, out.baseAddress, Int32(out.count))
                return max(0, Int(rc))
            }
            if rc > 0 {
                context.fireChannelRead(wrapInboundOut(buffer))
                plaintext = buffer
                continue
            }
            plaintext = buffer
            switch SSL_get_error(ssl, rc) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                flushCiphertext(context: context)  // e.g. a KeyUpdate answer
                return
            case SSL_ERROR_ZERO_RETURN:  // close_notify from the peer
                close(context: context, mode: .all, promise: nil)
                return
            default:
                fail(context: context, reason: TLSPSKContext.openSSLError())
                return
            }
        }
    }

    // MARK: outbound

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch state {
        case .handshaking:
            pending.append((unwrapOutboundIn(data), promise))
        case .open:
            let buffer = unwrapOutboundIn(data)
            ERR_clear_error()
            let rc = buffer.withUnsafeReadableBytes { SSL_write(ssl, $0.baseAddress, Int32($0.count)) }
            guard rc == buffer.readableBytes || buffer.readableBytes == 0 else {
                promise?.fail(HandshakeFailed(description: "TLS write failed: \(TLSPSKContext.openSSLError())"))
                return
            }
            if let promise { unflushedPromises.append(promise) }
        case .closing, .closed:
            promise?.fail(ChannelError.ioOnClosedChannel)
        }
    }

    public func flush(context: ChannelHandlerContext) {
        guard state == .open || state == .closing else { return }
        flushCiphertext(context: context)
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all, state == .open else {
            if mode == .all, state == .handshaking { state = .closing }
            context.close(mode: mode, promise: promise)
            return
        }
        state = .closing
        ERR_clear_error()
        _ = SSL_shutdown(ssl)  // queues close_notify; we do not wait for the peer's
        let sent = context.eventLoop.makePromise(of: Void.self)
        flushCiphertext(context: context, promise: sent)
        // Close once close_notify is on the wire, or after a second if the peer stopped reading.
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let deadline = context.eventLoop.scheduleTask(in: .seconds(1)) { bound.value.close(mode: .all, promise: nil) }
        sent.futureResult.whenComplete { _ in
            deadline.cancel()
            bound.value.close(mode: .all, promise: promise)
        }
    }

    /// Moves everything OpenSSL has produced to the socket, completing the writes it carries.
    private func flushCiphertext(context: ChannelHandlerContext, promise: EventLoopPromise<Void>? = nil) {
        let promises = unflushedPromises
        unflushedPromises = []
        let size = Int(BIO_ctrl_pending(wbio))
        guard size > 0 else {
            for p in promises { p.succeed() }
            promise?.succeed()
            return
        }
        var out = context.channel.allocator.buffer(capacity: size)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { max(0, Int(BIO_read(wbio, $0.baseAddress, Int32(clamping: size)))) }
        var combined = promise
        if !promises.isEmpty {
            let all = combined ?? context.eventLoop.makePromise(of: Void.self)
            for p in promises { all.futureResult.cascade(to: p) }
            combined = all
        }
        context.writeAndFlush(wrapOutboundOut(out), promise: combined)
    }

    private func fail(context: ChannelHandlerContext, reason: String) {
        guard state == .handshaking || state == .open else { return }
        let duringHandshake = state == .handshaking
        state = .closing
        timeout?.cancel()
        flushCiphertext(context: context)  // the alert, if OpenSSL produced one
        failPending(HandshakeFailed(description: reason))
        onFailure()
        let message = duringHandshake ? "TLS handshake refused" : "TLS session failed"
        let metadata: Logger.Metadata = ["peer": "\(Self.peerName(context))", "reason": "\(reason)"]
        if let audit {
            audit.record("tls-refused", message, metadata: metadata)
        } else {
            logger.warning("\(message)", metadata: metadata)
        }
        context.close(promise: nil)
    }

    private static func peerName(_ context: ChannelHandlerContext) -> String {
        context.remoteAddress.flatMap(PeerManager.endpoint(of:))?.socketAddress ?? "unknown"
    }

    private func failPending(_ error: any Error) {
        let queued = pending
        pending = []
        for (_, promise) in queued { promise?.fail(error) }
        let promises = unflushedPromises
        unflushedPromises = []
        for p in promises { p.fail(error) }
    }
}
