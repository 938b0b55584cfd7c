import MyceliumCore
import MyceliumCrypto
import NIOCore

/// Key proofs on a peer connection (`KeyProof`; docs/security.md, "Pinned peer keys").
///
/// Flow: sits between `PacketFramingHandler` and `PeerHandler`. On an accepted connection it
/// answers the peer's first challenge with a proof of this node's key (only acceptors answer:
/// only diallers pin, and a dialler that answered would let whoever it dials pass its
/// challenges on). Any other key proof frame is counted and dropped, and a peer sending
/// `maxDropped` of them is closed. On a dialled connection whose endpoint pins a key it holds
/// `channelActive` back (the router does not know the peer yet), sends a
/// challenge, and keeps what the peer sends meanwhile: control packets up to `maxHeld`, data
/// packets not at all (nothing is routed through an unproven peer). A valid proof passes
/// `channelActive` and the held packets on; a wrong one, or none within `timeout`, closes the
/// connection.
///
/// The channel binding is the session's TLS exporter value (QUIC, or the private network's
/// TLS), empty on plain TCP. Both ends take it after their handshake, so they agree.
final class KeyProofHandler: ChannelInboundHandler {
    typealias InboundIn = Packet
    typealias InboundOut = Packet
    typealias OutboundOut = Packet

    enum Event: Sendable {
        /// A challenge from the peer was answered.
        case answered
        /// The pinned peer proved its key.
        case verified
        /// The pinned peer did not (why), and the connection is closed.
        case failed(String)
        /// A key proof frame that was not asked for, or a second challenge.
        case dropped
        /// `maxDropped` of those: the connection is closed (why).
        case misbehaved(String)
        /// A packet from a pinned peer not yet proven, dropped: data, or control beyond `maxHeld`.
        case discarded
    }

    /// Control packets kept from a pinned peer while its proof is awaited.
    static let maxHeld = 256
    /// Key proof frames not asked for, on one connection, before it is closed.
    static let maxDropped = 8
    /// How long a pinned peer has to prove its key (as Rust's 10 s for a QUIC stream).
    static let defaultTimeout = TimeAmount.seconds(10)

    /// Answers challenges: set on accepted connections only.
    private let identity: SecretKey?
    private let identityKey: PublicKey?
    private let timeout: TimeAmount
    private let onEvent: (Event) -> Void
    private var challenge: KeyProof.Challenge?
    /// Whether `channelActive` has been passed on (at once unless a key is pinned).
    private var released: Bool
    private var answered = false
    /// The challenge went out; a failure was reported (once per connection).
    private var challenged = false
    private var failed = false
    private var dropped = 0
    private var held: [Packet] = []
    private var timer: Scheduled<Void>?

    /// `identity` answers challenges, on accepted connections (nil: they are dropped); `pinned`
    /// is the key the peer must prove, on dialled connections. `onEvent` runs on the
    /// channel's loop.
    /// `identityKey`: the identity's public key, if known (else computed here, one X25519).
    init(identity: SecretKey?, identityKey: PublicKey? = nil, pinned: PublicKey?, timeout: TimeAmount = defaultTimeout,
         onEvent: @escaping (Event) -> Void = { _ in }) {
        precondition(identity == nil || pinned == nil, "a dialled connection pins, an accepted one answers")
        self.identity = identity
        self.identityKey = identity.map { identityKey ?? $0.publicKey }
        self.timeout = timeout
        self.onEvent = onEvent
        challenge = pinned.map { KeyProof.Challenge(pinning: $0) }
        released = pinned == nil
    }

    func channelActive(context: ChannelHandlerContext) {
        guard let challenge, !released else {
            context.fireChannelActive()
            return
        }
        guard !challenged else { return }
        challenged = true
        context.writeAndFlush(wrapOutboundOut(.keyProof(challenge.frame)), promise: nil)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = bound.value
            handler.timer = nil
            guard !handler.released else { return }
            handler.fail(context: context, "no key proof within \(handler.timeout.nanoseconds / 1_000_000) ms (a Rust node cannot give one)")
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        held = []
        if released {
            context.fireChannelInactive()
        } else if challenged, !failed {
            failed = true
            onEvent(.failed("the peer closed the connection before proving its key (a Rust node closes on a challenge)"))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !failed else { return }  // closing: nothing more gets through
        let packet = unwrapInboundIn(data)
        if case let .keyProof(frame) = packet {
            receive(frame, context: context)
            return
        }
        if released {
            context.fireChannelRead(data)
        } else if case .control = packet, held.count < Self.maxHeld {
            held.append(packet)
        } else {
            onEvent(.discarded)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if released { context.fireChannelReadComplete() }
    }

    private func receive(_ frame: KeyProofFrame, context: ChannelHandlerContext) {
        switch frame.kind {
        case .challenge:
            guard !answered, let identity, let binding = Self.binding(of: context),
                  let proof = KeyProof.answer(frame, secret: identity, publicKey: identityKey, binding: binding) else {
                drop(context: context)  // a second one, a dialled connection, or a low-order key
                return
            }
            answered = true
            context.writeAndFlush(wrapOutboundOut(.keyProof(proof)), promise: nil)
            onEvent(.answered)
        case .proof:
            guard let challenge, !released else {
                drop(context: context)
                return
            }
            guard let binding = Self.binding(of: context) else {
                fail(context: context, "no TLS session to bind the proof to")
                return
            }
            do {
                try challenge.verify(frame, binding: binding)
            } catch {
                fail(context: context, "\(error)")
                return
            }
            released = true
            self.challenge = nil  // its ephemeral secret goes with it
            timer?.cancel()
            timer = nil
            onEvent(.verified)
            context.fireChannelActive()
            let waiting = held
            held = []
            for packet in waiting where context.channel.isActive { context.fireChannelRead(wrapInboundOut(packet)) }
            context.fireChannelReadComplete()
        }
    }

    private func drop(context: ChannelHandlerContext) {
        onEvent(.dropped)
        dropped += 1
        if dropped >= Self.maxDropped { close(context: context, .misbehaved("\(dropped) key proof frames not asked for")) }
    }

    private func fail(context: ChannelHandlerContext, _ why: String) {
        close(context: context, .failed(why))
    }

    /// Closes the connection, reporting `event` once; nothing more is passed on.
    private func close(context: ChannelHandlerContext, _ event: Event) {
        guard !failed else { return }
        failed = true
        onEvent(event)
        context.close(promise: nil)
    }

    /// The session's exporter value: QUIC's or the private network's TLS; empty on plain TCP.
    /// Nil when the session has none yet.
    static func binding(of context: ChannelHandlerContext) -> [UInt8]? {
        if let tls = try? context.pipeline.syncOperations.handler(type: TLSPSKHandler.self) {
            return tls.exportKeyingMaterial(label: KeyProof.exporterLabel, length: KeyProof.bindingLength)
        }
        if let quic = context.channel as? QUICPeerChannel {
            return quic.connection.exportKeyingMaterial(label: KeyProof.exporterLabel, length: KeyProof.bindingLength)
        }
        return []
    }
}
