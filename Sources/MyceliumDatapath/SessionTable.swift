public import MyceliumCore
public import MyceliumRouting
public import MyceliumCrypto

/// Sessions with forward secrecy between our nodes (docs/sessions.md): the handshake's state
/// machine, the per-direction ciphers, counters and replay windows. No I/O: `now` comes in,
/// handshake messages to send go out in `outgoing`, and `DatapathCore` seals and routes them.
///
/// Per peer (keyed by its static key, LRU-bounded):
/// - `current`: sends and receives; `previous`: receives only, until it expires (packets in
///   flight across a rekey); `next`: the responder's new session, receive-only until the
///   initiator's first packet under it confirms it;
/// - `pending`: our Init in flight (ephemeral secret, index, attempts);
/// - `lastInit`: the newest Init timestamp accepted (an older or equal one is a replay);
/// - `capable`: the peer has spoken the handshake: its static-scheme data is refused while a
///   session is up (no silent downgrade); `fallbackUntil`: it never answered, static until then.
public struct SessionTable {
    public struct Limits: Sendable {
        /// A sender starts a new handshake once its session is this old…
        public var rekeyAfterMs: Int64 = 120_000
        /// …and never uses (nor accepts) a session older than this.
        public var rejectAfterMs: Int64 = 180_000
        /// Volume limits per session key (AES-GCM with counter nonces).
        public var rekeyAfterPackets: UInt64 = 1 << 30
        public var rejectAfterPackets: UInt64 = 1 << 31
        /// First retry after this; doubled at each attempt.
        public var handshakeTimeoutMs: Int64 = 1_000
        /// Inits sent before the peer is taken to be a Rust node (static scheme only)…
        public var handshakeAttempts = 3
        /// …for this long, after which one more handshake is tried.
        public var fallbackRetryMs: Int64 = 300_000
        /// A session we sent on for this long without hearing anything under it is stale: a new
        /// handshake is started (the peer may have restarted, or been rolled back to the static
        /// scheme)…
        public var staleAfterMs: Int64 = 15_000
        /// …which is why a receiver that has sent nothing for this long after data arrived sends
        /// an empty keepalive (a `sessionConfirm`) under the session.
        public var keepaliveAfterMs: Int64 = 10_000
        /// Probes (an Init because a packet from the peer did not open, or was refused as a
        /// downgrade): at most one per peer per this, and within `probeBurst`/`probesPerSecond`
        /// for all peers (forged packets can cost us no more).
        public var probeIntervalMs: Int64 = 5_000
        public var probeBurst = 10
        public var probesPerSecond = 2
        /// Inits we start (for our traffic, retries, renewals, probes), all peers: burst, rate.
        public var initiationBurst = 100
        public var initiationsPerSecond = 100
        /// Responses to authentic Inits (four X25519 each), all peers; and at most one per peer
        /// per `responseIntervalMs`.
        public var responseBurst = 200
        public var responsesPerSecond = 200
        public var responseIntervalMs: Int64 = 250
        /// Peers with session state (LRU; an evicted peer redoes its handshake).
        public var peers = 4096

        public init() {}
        public static let standard = Limits()
    }

    public struct Counters: Hashable, Sendable {
        public var initsSent: UInt64 = 0
        public var responsesSent: UInt64 = 0
        /// Sessions set up (both roles), rekeys included.
        public var established: UInt64 = 0
        public var rekeys: UInt64 = 0
        /// Inits and responses refused: stale or replayed timestamp, unknown index, bad layout.
        public var handshakesRefused: UInt64 = 0
        /// Our handshake given up for a crossed one the peer leads.
        public var crossed: UInt64 = 0
        /// Peers that never answered: static scheme until the next try.
        public var fallbacks: UInt64 = 0
        /// Handshakes or probes not done: over their rate.
        public var rateLimited: UInt64 = 0
        /// Session packets refused by the replay window (duplicate or too old).
        public var replays: UInt64 = 0
        /// Sessions erased (expired or replaced), with their keys.
        public var erased: UInt64 = 0
        public init() {}
    }

    /// What `DatapathCore` must send for the table.
    public enum Outgoing {
        /// Static-sealed handshake message of `type` to `peer`'s node address.
        case handshake(PublicKey, UserHeader.PayloadType, [UInt8])
        /// A session-sealed, empty `sessionConfirm` to `peer`: the initiator's first packet, and
        /// the keepalive of a receiver with nothing to send.
        case confirm(PublicKey)
        /// A session with `peer` can send now: release what waited for it.
        case established(PublicKey)
        /// The peer never answered: what waited for a session goes static, or is dropped with
        /// `--require-sessions`.
        case failed(PublicKey)
    }

    /// How `DatapathCore` must seal a packet for a peer.
    public enum Sealing {
        case session(PacketCipher, index: UInt32, counter: UInt64)
        case staticKey
        /// No session yet, a handshake is on its way, and static would be refused (the peer
        /// speaks sessions, or `--require-sessions`): hold the packet.
        case wait
        /// No session and none coming soon (`--require-sessions` towards a peer that did not
        /// answer, or the handshake rate is exhausted): drop it.
        case refuse
    }

    public enum Opened {
        /// Opened in place: the payload now holds the body.
        case opened(header: UserHeader?)
        /// A replay or a counter below the window: dropped, counted.
        case replay
        /// Not sealed with one of this peer's sessions (the payload is untouched): try the
        /// static key.
        case notSession
        /// It names a live session of this peer but does not open under its key (forged, or
        /// corrupted): dropped. The payload was decrypted in place and is garbage now; a static
        /// packet whose random nonce named a live session index (2⁻³² per index) is lost too.
        case failed
    }

    final class Session {
        let localIndex: UInt32
        let remoteIndex: UInt32
        let send: PacketCipher
        let receive: PacketCipher
        let created: Int64
        let initiator: Bool
        // Read and written for every packet of the session: in release builds exempt from
        // run-time exclusivity checks, sound because a session belongs to one table, whose
        // owner confines it, and nothing here calls out while changing them (the ciphers are
        // `let`s). Debug builds (the tests) keep the checks.
        #if DEBUG
        var sendCounter: UInt64 = 0
        var window = ReplayWindow()
        var lastSent: Int64
        var lastReceived: Int64
        #else
        @exclusivity(unchecked) var sendCounter: UInt64 = 0
        @exclusivity(unchecked) var window = ReplayWindow()
        @exclusivity(unchecked) var lastSent: Int64
        @exclusivity(unchecked) var lastReceived: Int64
        #endif

        init(localIndex: UInt32, remoteIndex: UInt32, send: PacketCipher, receive: PacketCipher, created: Int64, initiator: Bool) {
            self.localIndex = localIndex
            self.remoteIndex = remoteIndex
            self.send = send
            self.receive = receive
            self.created = created
            self.initiator = initiator
            lastSent = created
            lastReceived = created
        }
    }

    struct Pending {
        let ephemeral: SecretKey
        let index: UInt32
        let message: [UInt8]
        let sentAt: Int64
        let attempt: Int
    }

    struct Peer {
        var current: Session?
        var previous: Session?
        var next: Session?
        var pending: Pending?
        var lastInit: UInt64 = 0
        var capable = false
        var fallbackUntil: Int64 = 0
        var lastProbe: Int64 = .min / 2
        var lastResponse: Int64 = .min / 2
    }

    public let identity: NodeIdentity
    public let limits: Limits
    /// Wall clock = monotonic `now` + this (Init timestamps must grow across restarts).
    private let wallClockOffsetMs: Int64
    public let requireSessions: Bool
    private var peers: LRUCache<PublicKey, Peer>
    /// Our receive indices (sessions and pending Inits) → the peer they belong to; at most four
    /// per peer in `peers`.
    private var indices: [UInt32: PublicKey] = [:]
    private var lastTimestamp: UInt64 = 0
    private var initiations: TokenBucket
    private var responses: TokenBucket
    private var probes: TokenBucket
    public private(set) var counters = Counters()
    private var random = SystemIndexSource()

    public init(identity: NodeIdentity, limits: Limits = .standard, requireSessions: Bool = false,
                wallClockOffsetMs: Int64, now: Instant) {
        self.identity = identity
        self.limits = limits
        self.requireSessions = requireSessions
        self.wallClockOffsetMs = wallClockOffsetMs
        peers = LRUCache(capacity: limits.peers)
        initiations = TokenBucket(burst: limits.initiationBurst, rate: limits.initiationsPerSecond, perMs: 1000, now: now.milliseconds)
        responses = TokenBucket(burst: limits.responseBurst, rate: limits.responsesPerSecond, perMs: 1000, now: now.milliseconds)
        probes = TokenBucket(burst: limits.probeBurst, rate: limits.probesPerSecond, perMs: 1000, now: now.milliseconds)
    }

    /// Peers with a session that can send.
    public var sessionsUp: Int {
        var n = 0
        peers.forEachValue { if $0.current != nil { n += 1 } }
        return n
    }

    /// Receive indices in use (tests: bounded by four per peer).
    public var indexCount: Int { indices.count }

    /// Whether `peer` has a session we send with (tests, API).
    public func hasSession(with peer: PublicKey) -> Bool { peers.peek(peer)?.current != nil }

    /// Whether `peer` has spoken the handshake (and has not since stopped answering).
    public func isCapable(_ peer: PublicKey) -> Bool { peers.peek(peer)?.capable ?? false }

    /// What the API shows of one peer's session state (no key material).
    public struct PeerView: Hashable, Sendable {
        public enum State: String, Sendable {
            /// A session we send under.
            case up
            /// Our Init is out, no Response yet.
            case handshaking
            /// We answered the peer's Init; its Confirm has not arrived.
            case answered
            /// It never answered: static scheme until `fallbackLeftMs` runs out.
            case fallback
            /// Nothing in progress (sessions expired, or never needed).
            case idle
        }

        public let peer: PublicKey
        public let state: State
        public let capable: Bool
        /// Of the current session: whether we started it, its age, packets sent under it,
        /// and how long ago something arrived under it.
        public let initiator: Bool?
        public let ageMs: Int64?
        public let packetsSent: UInt64?
        public let lastReceivedMs: Int64?
        public let fallbackLeftMs: Int64
    }

    /// Every peer with session state, in no particular order.
    public func views(now: Instant) -> [PeerView] {
        var out: [PeerView] = []
        let t = now.milliseconds
        let limits = self.limits
        peers.forEachEntry { key, p in
            let current = p.current.flatMap { t - $0.created < limits.rejectAfterMs ? $0 : nil }
            let state: PeerView.State = current != nil ? .up : p.pending != nil ? .handshaking
                : p.next != nil ? .answered : t < p.fallbackUntil ? .fallback : .idle
            out.append(PeerView(peer: key, state: state, capable: p.capable, initiator: current?.initiator,
                                ageMs: current.map { t - $0.created }, packetsSent: current?.sendCounter,
                                lastReceivedMs: current.map { t - $0.lastReceived }, fallbackLeftMs: max(0, p.fallbackUntil - t)))
        }
        return out
    }

    // MARK: sending

    /// How to seal the next packet for `peer`; starts (or renews) a handshake when needed.
    public mutating func sealing(for peer: PublicKey, now: Instant, into outgoing: inout [Outgoing]) -> Sealing {
        let limits = self.limits
        let requireSessions = self.requireSessions
        let t = now.milliseconds
        let (evicted, decision) = peers.modify(peer, default: Peer()) { p -> (Sealing, start: Bool) in
            if let s = p.current, t - s.created < limits.rejectAfterMs, s.sendCounter < limits.rejectAfterPackets {
                let counter = s.sendCounter
                s.sendCounter += 1
                s.lastSent = t
                // The initiator renews first; the responder only if the initiator did not.
                let age = t - s.created - (s.initiator ? 0 : limits.handshakeTimeoutMs * 10)
                let renew = p.pending == nil && p.next == nil && (age >= limits.rekeyAfterMs || counter >= limits.rekeyAfterPackets)
                return (.session(s.send, index: s.remoteIndex, counter: counter), renew)
            }
            // A `next` we answered recently: its Confirm is on its way, no handshake of our own.
            let answered = p.next.map { t - $0.created < 2 * limits.handshakeTimeoutMs } ?? false
            let handshaking = p.pending != nil || answered
            if requireSessions, !handshaking, t < p.fallbackUntil { return (.refuse, false) }
            let start = !handshaking && t >= p.fallbackUntil
            // A peer that speaks sessions gets none of our static packets: they would be refused.
            return (requireSessions || p.capable ? .wait : .staticKey, start)
        }
        forget(evicted)
        if decision.start, !startHandshake(with: peer, attempt: 1, now: now, into: &outgoing), case .wait = decision.0 {
            return .refuse  // nothing will ever release it
        }
        return decision.0
    }

    /// The cipher that sealed a payload we sent to `peer` under a session (out-of-band ICMP
    /// quotes it back), found by the peer's index in its nonce.
    public func cipherOfSent(_ payload: [UInt8], to peer: PublicKey) -> PacketCipher? {
        guard let (index, _) = SessionWire.nonce(of: payload), let p = peers.peek(peer) else { return nil }
        if let s = p.current, s.remoteIndex == index { return s.send }
        if let s = p.previous, s.remoteIndex == index { return s.send }
        if let s = p.next, s.remoteIndex == index { return s.send }
        return nil
    }

    // MARK: receiving

    /// Opens `payload` if its nonce names one of `peer`'s sessions; checks and advances the
    /// session's replay window. A responder's `next` session is confirmed by its first packet.
    public mutating func open(_ payload: inout [UInt8], from peer: PublicKey, now: Instant, into outgoing: inout [Outgoing]) -> Opened {
        guard let (index, counter) = SessionWire.nonce(of: payload), indices[index] == peer else { return .notSession }
        let limits = self.limits
        var confirmed = false
        var freed: [UInt32] = []
        let result: Opened = peers.modifyExisting(peer) { p -> Opened in
            guard let s = Self.session(in: p, index: index), now.milliseconds - s.created < limits.rejectAfterMs else {
                return .notSession
            }
            // Not opened first: a replay costs no decryption (and cannot make us probe).
            guard s.window.isFresh(counter) else { return .replay }
            // Authentic with an unknown user header is opened (nil), not a failure.
            let header: UserHeader?
            do { header = try s.receive.openInPlace(&payload) } catch { return .failed }
            _ = s.window.accept(counter)
            s.lastReceived = now.milliseconds
            if let n = p.next, n === s {
                Self.replace(&p.previous, with: p.current, freed: &freed)
                p.current = n
                p.next = nil
                confirmed = true
            }
            return .opened(header: header)
        } ?? .notSession
        release(freed)
        if case .replay = result { counters.replays += 1 }
        if confirmed {
            counters.established += 1
            outgoing.append(.established(peer))
        }
        return result
    }

    /// Whether static-scheme data (IPv6, messages, OOB ICMP) from `peer` is accepted: not once
    /// it has spoken the handshake, nor ever with `--require-sessions` (docs/sessions.md,
    /// Downgrade).
    public func acceptsStatic(from peer: PublicKey, now: Instant) -> Bool {
        if requireSessions { return false }
        return !(peers.peek(peer)?.capable ?? false)
    }

    /// A packet from `peer` that opened with no key we have (perhaps we restarted and it still
    /// uses a session we lost), or static data refused as a downgrade (perhaps it fell back
    /// while we did not): start a handshake, at most once per `probeIntervalMs` per peer and
    /// within the probe budget, so forged packets cannot make us do more.
    public mutating func probe(_ peer: PublicKey, now: Instant, into outgoing: inout [Outgoing]) {
        let t = now.milliseconds
        if let p = peers.peek(peer) {
            guard p.pending == nil, t >= p.fallbackUntil, t - p.lastProbe >= limits.probeIntervalMs else { return }
        }
        guard probes.take(now: t) else { counters.rateLimited += 1; return }
        if startHandshake(with: peer, attempt: 1, now: now, into: &outgoing) {
            peers.modifyExisting(peer) { $0.lastProbe = t }
        }
    }

    // MARK: handshake

    /// An authentic (static-sealed) Init from `peer`.
    public mutating func receivedInit(_ bytes: [UInt8], from peer: PublicKey, now: Instant, into outgoing: inout [Outgoing]) {
        let t = now.milliseconds
        guard let message = try? SessionInit(decoding: bytes) else { counters.handshakesRefused += 1; return }
        let state = peers.peek(peer) ?? Peer()
        guard message.timestamp > state.lastInit else { counters.handshakesRefused += 1; return }
        // Crossed handshakes: the smaller static key leads; the other answers it.
        if state.pending != nil, identity.publicKey.bytes.lexicographicallyPrecedes(peer.bytes) {
            counters.crossed += 1
            return
        }
        guard t - state.lastResponse >= limits.responseIntervalMs, responses.take(now: t) else {
            counters.rateLimited += 1
            return
        }
        let ephemeral = SecretKey.generate()
        let index = newIndex(for: peer)
        let response = SessionResponse(responderIndex: index, initiatorIndex: message.initiatorIndex,
                                       ephemeral: ephemeral.publicKey).encode()
        guard var keys = SessionCrypto.responderKeys(staticSecret: identity.secretKey, ephemeral: ephemeral,
                                                     initiator: peer, initiatorEphemeral: message.ephemeral,
                                                     responder: identity.publicKey, initMessage: bytes,
                                                     responseMessage: response) else {
            indices[index] = nil
            counters.handshakesRefused += 1
            return
        }
        let session = Session(localIndex: index, remoteIndex: message.initiatorIndex,
                              send: PacketCipher(key: keys.responderToInitiator), receive: PacketCipher(key: keys.initiatorToResponder),
                              created: t, initiator: false)
        keys.wipe()
        var freed: [UInt32] = []
        var abandoned: UInt32?
        let evicted = peers.modify(peer, default: Peer()) { p in
            abandoned = p.pending?.index
            p.pending = nil
            Self.replace(&p.next, with: session, freed: &freed)
            p.lastInit = message.timestamp
            p.lastResponse = t
            p.capable = true
            p.fallbackUntil = 0
        }.evicted
        forget(evicted)
        release(freed)
        if let abandoned {
            indices[abandoned] = nil
            counters.crossed += 1
        }
        counters.responsesSent += 1
        outgoing.append(.handshake(peer, .sessionResponse, response))
    }

    /// An authentic (static-sealed) Response from `peer`.
    public mutating func receivedResponse(_ bytes: [UInt8], from peer: PublicKey, now: Instant, into outgoing: inout [Outgoing]) {
        guard let message = try? SessionResponse(decoding: bytes),
              let pending = peers.peek(peer)?.pending, pending.index == message.initiatorIndex else {
            counters.handshakesRefused += 1
            return
        }
        guard var keys = SessionCrypto.initiatorKeys(staticSecret: identity.secretKey, ephemeral: pending.ephemeral,
                                                     initiator: identity.publicKey, responder: peer,
                                                     responderEphemeral: message.ephemeral,
                                                     initMessage: pending.message, responseMessage: bytes) else {
            counters.handshakesRefused += 1
            return
        }
        let session = Session(localIndex: pending.index, remoteIndex: message.responderIndex,
                              send: PacketCipher(key: keys.initiatorToResponder), receive: PacketCipher(key: keys.responderToInitiator),
                              created: now.milliseconds, initiator: true)
        keys.wipe()
        var freed: [UInt32] = []
        var rekey = false
        peers.modifyExisting(peer) { p in
            p.pending = nil  // the ephemeral secret goes with it (SecretKey wipes on deinit)
            rekey = p.current != nil
            Self.replace(&p.previous, with: p.current, freed: &freed)
            p.current = session
            p.capable = true
            p.fallbackUntil = 0
        }
        release(freed)
        counters.established += 1
        if rekey { counters.rekeys += 1 }
        outgoing.append(.confirm(peer))
        outgoing.append(.established(peer))
    }

    /// Sends an Init (within the initiation budget); false when over it.
    @discardableResult
    private mutating func startHandshake(with peer: PublicKey, attempt: Int, now: Instant, into outgoing: inout [Outgoing]) -> Bool {
        guard initiations.take(now: now.milliseconds) else { counters.rateLimited += 1; return false }
        let ephemeral = SecretKey.generate()
        let index = newIndex(for: peer)
        lastTimestamp = max(lastTimestamp + 1, UInt64(max(0, now.milliseconds + wallClockOffsetMs)))
        let message = SessionInit(initiatorIndex: index, timestamp: lastTimestamp, ephemeral: ephemeral.publicKey).encode()
        var freed: UInt32?
        let evicted = peers.modify(peer, default: Peer()) { p in
            freed = p.pending?.index
            p.pending = Pending(ephemeral: ephemeral, index: index, message: message, sentAt: now.milliseconds, attempt: attempt)
        }.evicted
        forget(evicted)
        if let freed { indices[freed] = nil }
        counters.initsSent += 1
        outgoing.append(.handshake(peer, .sessionInit, message))
        return true
    }

    // MARK: time

    /// Retries or abandons handshakes, renews stale sessions, sends keepalives, erases expired
    /// sessions. Call about once a second.
    public mutating func tick(now: Instant, into outgoing: inout [Outgoing]) {
        let limits = self.limits
        let t = now.milliseconds
        var retry: [(PublicKey, Int)] = []
        var renew: [PublicKey] = []
        var keepalive: [PublicKey] = []
        var failed: [PublicKey] = []
        var freed: [UInt32] = []
        var abandoned: [UInt32] = []
        var fallbacks: UInt64 = 0
        peers.updateEach { key, p in
            if let pending = p.pending, t - pending.sentAt >= limits.handshakeTimeoutMs << (pending.attempt - 1) {
                if pending.attempt < limits.handshakeAttempts {
                    retry.append((key, pending.attempt + 1))
                } else {
                    abandoned.append(pending.index)
                    p.pending = nil
                    p.fallbackUntil = t + limits.fallbackRetryMs
                    fallbacks += 1
                    failed.append(key)
                    // It answered before, not now: perhaps rolled back to the static scheme.
                    // Its sessions are dead and static is accepted again.
                    p.capable = false
                    Self.replace(&p.current, with: nil, freed: &freed)
                    Self.replace(&p.previous, with: nil, freed: &freed)
                    Self.replace(&p.next, with: nil, freed: &freed)
                }
            }
            if let s = p.current {
                if p.pending == nil, p.next == nil, s.lastSent - s.lastReceived >= limits.staleAfterMs {
                    renew.append(key)
                } else if s.lastReceived > s.lastSent, t - s.lastSent >= limits.keepaliveAfterMs {
                    keepalive.append(key)
                }
            }
            // Sessions go once they may no longer be used.
            if let s = p.current, t - s.created >= limits.rejectAfterMs { Self.replace(&p.current, with: nil, freed: &freed) }
            if let s = p.previous, t - s.created >= limits.rejectAfterMs { Self.replace(&p.previous, with: nil, freed: &freed) }
            if let s = p.next, t - s.created >= limits.rejectAfterMs { Self.replace(&p.next, with: nil, freed: &freed) }
        }
        release(freed)
        for i in abandoned { indices[i] = nil }
        counters.fallbacks += fallbacks
        for (peer, attempt) in retry { startHandshake(with: peer, attempt: attempt, now: now, into: &outgoing) }
        for peer in renew { startHandshake(with: peer, attempt: 1, now: now, into: &outgoing) }
        for peer in keepalive { outgoing.append(.confirm(peer)) }
        for peer in failed { outgoing.append(.failed(peer)) }
    }

    // MARK: helpers

    /// The session of `p` we receive under `index` (no array: this runs per packet).
    private static func session(in p: Peer, index: UInt32) -> Session? {
        if let s = p.current, s.localIndex == index { return s }
        if let s = p.next, s.localIndex == index { return s }
        if let s = p.previous, s.localIndex == index { return s }
        return nil
    }

    /// Every slot assignment that may displace a session goes through here: the displaced
    /// session's index is collected for `release` (which also counts it erased).
    private static func replace(_ slot: inout Session?, with new: Session?, freed: inout [UInt32]) {
        if let old = slot, old !== new { freed.append(old.localIndex) }
        slot = new
    }

    /// Forgets the indices of displaced sessions; their keys go with the last reference.
    private mutating func release(_ freed: [UInt32]) {
        for i in freed { indices[i] = nil }
        counters.erased += UInt64(freed.count)
    }

    private mutating func newIndex(for peer: PublicKey) -> UInt32 {
        while true {
            let i = random.next()
            if indices[i] == nil {
                indices[i] = peer
                return i
            }
        }
    }

    /// A peer pushed out of the LRU: its indices go too.
    private mutating func forget(_ evicted: (key: PublicKey, value: Peer)?) {
        guard let (_, p) = evicted else { return }
        for s in [p.current, p.previous, p.next] { if let s { indices[s.localIndex] = nil } }
        if let pending = p.pending { indices[pending.index] = nil }
    }
}

/// Receive indices drawn from the CSPRNG in bulk (one call per 256).
struct SystemIndexSource {
    private var pool: [UInt32] = []

    mutating func next() -> UInt32 {
        if pool.isEmpty {
            let bytes = SecureRandom.bytes(1024)
            pool = stride(from: 0, to: 1024, by: 4).map { (i: Int) -> UInt32 in
                let high = UInt32(bytes[i]) << 24 | UInt32(bytes[i + 1]) << 16
                let low = UInt32(bytes[i + 2]) << 8 | UInt32(bytes[i + 3])
                return high | low
            }
        }
        return pool.removeLast()
    }
}
