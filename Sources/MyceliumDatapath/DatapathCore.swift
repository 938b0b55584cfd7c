public import MyceliumCore
public import MyceliumCrypto
public import MyceliumRouting

/// The datapath's choices about sessions (docs/sessions.md).
public struct SessionOptions: Sendable {
    /// Off: behave as a Rust node (static scheme only, handshake messages dropped unanswered).
    public var enabled = true
    /// Refuse the static scheme for data in both directions: our-nodes-only clusters.
    public var required = false
    public var limits = SessionTable.Limits.standard
    public var nonceFilter = NonceFilter.Limits.standard
    /// Wall clock minus the monotonic clock, in ms (handshake timestamps survive restarts).
    public var wallClockOffsetMs: Int64 = 0

    public init(enabled: Bool = true, required: Bool = false, wallClockOffsetMs: Int64 = 0) {
        self.enabled = enabled
        self.required = required
        self.wallClockOffsetMs = wallClockOffsetMs
    }
}

/// The data plane's rules (spec §4) with no I/O: bytes and `now` in, actions out.
///
/// Flow, from the TUN (`fromTun`): outbound checks and ICMPv6 replies (§4.3) → forwarding-table
/// lookup → seal with the destination owner's key → `route` (hop limit − 1) → `.toPeer`. Without
/// a route the packet waits in a bounded queue and `.routeNeeded` asks the router.
/// Flow, from a peer (`fromPeer`): `route`: hop limit − 1 (§4.4) → not ours: forward still
/// encrypted (destinations outside 400::/7 dropped at once) → ours: open with the source owner's
/// key → inner header checked against the outer one (`InboundPolicy`) → `.toTun` with the hop
/// limit stamped (§4.5), or out-of-band ICMP, itself checked against what we sent (§4.6).
/// Route events (`routeEvent`) release what waited for a subnet, or fail it with ICMPv6.
/// Sessions (docs/sessions.md): sealing goes through `SessionTable` (session key and counter
/// nonce when a session is up, else the static key while a handshake is started); opening tries
/// the session named by the nonce first, then the static key behind the per-sender replay
/// filter (`NonceFilter`). `tick` drives handshake retries and key expiry.
///
/// The shell (`Datapath` in MyceliumNode) performs the actions: writes to connections and the
/// TUN, router queries, audit lines. Every drop is counted in `stats` by reason; the queues and
/// the cipher cache are bounded. A value type with one owner: not thread-safe by design.
public struct DatapathCore {
    /// What the shell must do, in order.
    public enum Action {
        /// Queue `packet` on the connection to `neighbour` (flushed once per batch).
        case toPeer(DataPacket, NeighbourId)
        /// Write this IPv6 packet to the TUN.
        case toTun([UInt8])
        /// Ask the router for a route to this address.
        case routeNeeded(IPv6Address)
        /// A packet whose sealer lied about its content: worth an audit line.
        case audit(DatapathAudit)
        /// A message-bus packet (spec §7) from `source`, opened with its owner's `key`.
        case message([UInt8], source: IPv6Address, key: PublicKey, destination: IPv6Address)
    }

    public let identity: NodeIdentity
    private let policy: OutboundPolicy
    public private(set) var table: ForwardingTable
    private var ciphers: LRUCache<PublicKey, PacketCipher>
    /// Plaintext IPv6 packets from the TUN waiting for a route.
    private var outboundQueue = PacketQueue<[UInt8]>(limits: .outbound)
    /// Encrypted packets to forward, waiting for a route.
    private var forwardQueue = PacketQueue<DataPacket>(limits: .forward)
    /// Encrypted packets for us, waiting for the sender's key.
    private var inboundQueue = PacketQueue<DataPacket>(limits: .inbound)
    /// ICMPv6 errors written to the TUN, and out-of-band reports sent to sources.
    private var tunICMPBudget: TokenBucket
    private var outOfBandBudget: TokenBucket
    /// Counters; the shell adds what only it can see (TUN full, peer busy, backlog).
    public var stats = DatapathStats()
    public private(set) var traffic = TrafficCounters()
    /// Nil when sessions are off.
    public private(set) var sessions: SessionTable?
    private var nonces: NonceFilter
    /// Plaintext packets waiting for a session (`--require-sessions` only).
    private var sessionWait = PacketQueue<[UInt8]>(limits: DatapathLimits.sessionWait)
    private var outgoing: [SessionTable.Outgoing] = []
    private var draining = false

    /// The hop limit of packets the node originates itself (OOB ICMP, messages).
    public static let originHopLimit: UInt8 = 64
    /// The largest IPv6 packet whose sealed form (user header, tag, nonce) fits a data packet.
    public static let largestTunPacket = DataPacket.maxPayloadLength - UserHeader.length - EncryptedPayload.overhead

    public init(identity: NodeIdentity, cipherCache: Int = DatapathLimits.cipherCache, sessions options: SessionOptions = .init(),
                now: Instant) {
        self.identity = identity
        self.sessions = options.enabled
            ? SessionTable(identity: identity, limits: options.limits, requireSessions: options.required,
                           wallClockOffsetMs: options.wallClockOffsetMs, now: now)
            : nil
        self.nonces = NonceFilter(limits: options.nonceFilter)
        self.policy = OutboundPolicy(nodeAddress: identity.address)
        self.table = .empty(localSubnet: identity.subnet)
        self.ciphers = LRUCache(capacity: cipherCache)
        tunICMPBudget = TokenBucket(burst: DatapathLimits.tunICMPBurst, rate: DatapathLimits.tunICMPPerSecond, perMs: 1000,
                                    now: now.milliseconds)
        outOfBandBudget = TokenBucket(burst: DatapathLimits.outOfBandBurst, rate: DatapathLimits.outOfBandPerSecond, perMs: 1000,
                                      now: now.milliseconds)
    }

    /// Packets waiting for a route or a key.
    public var queuedPackets: Int { outboundQueue.count + forwardQueue.count + inboundQueue.count + sessionWait.count }
    /// `stats` with the session table's counters and the replay state's size.
    public var report: DatapathStats {
        var s = stats
        if let sessions {
            s.sessions = sessions.counters
            s.sessionsUp = sessions.sessionsUp
        }
        s.replaySenders = nonces.senderCount
        s.replayFingerprints = nonces.fingerprintCount
        return s
    }

    /// The session state of every peer (empty with sessions off).
    public func sessionViews(now: Instant) -> [SessionTable.PeerView] {
        sessions?.views(now: now) ?? []
    }

    /// Senders whose static nonces are remembered, and how many (memory of the replay state).
    public var replayState: (senders: Int, fingerprints: Int) { (nonces.senderCount, nonces.fingerprintCount) }
    /// Peers whose cipher is cached.
    public var cachedCiphers: Int { ciphers.count }

    // MARK: router events

    public mutating func tableChanged(_ table: ForwardingTable) {
        self.table = table
    }

    /// A new table, and the packets waiting for a route it now has sent on at once: a route can
    /// appear, or move to another next hop, without an acquisition event (`nextHopGone`).
    /// Costs a lookup per subnet with packets waiting (bounded by the queues' limits).
    public mutating func tableChanged(_ table: ForwardingTable, now: Instant, into actions: inout [Action]) {
        self.table = table
        guard queuedPackets > 0 else { return }
        // A subnet waiting in several queues is released from all of them by its first visit.
        for queue in [outboundQueue.subnets, forwardQueue.subnets, inboundQueue.subnets] {
            for subnet in queue where hasQueued(for: subnet) {
                guard let address = subnet.ipv6, case let .route(entry) = table.lookup(address), entry.nextHop != nil else { continue }
                routeEvent(.routeAcquired(subnet), now: now, into: &actions)
            }
        }
    }

    /// A packet the shell could not hand to its next hop because that neighbour's connection
    /// is gone (the router's table without it has not arrived yet): it waits for a route like a
    /// forwarded packet, and the route is asked for; the next table that has one sends it on.
    public mutating func nextHopGone(_ packet: consuming DataPacket, into actions: inout [Action]) {
        let destination = packet.destination
        guard forwardQueue.enqueue(packet, for: Subnet.slash64(of: destination)) == .queued else {
            stats.droppedNoRoute += 1
            return
        }
        actions.append(.routeNeeded(destination))
    }

    /// Whether packets wait for a route to `subnet` (sent, forwarded or delivered on its acquisition).
    public func hasQueued(for subnet: Subnet) -> Bool {
        outboundQueue.count(for: subnet) > 0 || forwardQueue.count(for: subnet) > 0 || inboundQueue.count(for: subnet) > 0
    }

    public mutating func routeEvent(_ event: RouterAction, now: Instant, into actions: inout [Action]) {
        switch event {
        case let .routeAcquired(subnet):
            for packet in outboundQueue.take(subnet) { fromTun(packet, now: now, into: &actions, counted: true) }
            for packet in forwardQueue.take(subnet) { route(packet, now: now, into: &actions) }
            for packet in inboundQueue.take(subnet) { deliverLocally(packet, now: now, into: &actions) }
        case let .routeLost(subnet), let .queryFailed(subnet):
            for packet in outboundQueue.take(subnet) {
                stats.droppedNoRoute += 1
                writeICMP(OutboundPolicy.noRoute(for: packet), now: now, into: &actions)
            }
            stats.droppedNoRoute += UInt64(forwardQueue.take(subnet).count + inboundQueue.take(subnet).count)
        default:
            break
        }
    }

    // MARK: from the TUN

    /// `packet` is consumed: it is sealed in place, in its own array (no allocation when it has
    /// `EncryptedPayload.sealRoom` spare capacity), and sent on as the data packet's payload.
    public mutating func fromTun(_ packet: consuming [UInt8], now: Instant, into actions: inout [Action]) {
        fromTun(consume packet, now: now, into: &actions, counted: false)
    }

    private mutating func fromTun(_ packet: consuming [UInt8], now: Instant, into actions: inout [Action], counted: Bool) {
        if !counted {
            stats.tunPacketsIn += 1
            stats.tunBytesIn += UInt64(packet.count)
        }
        // Only if someone raised the TUN's MTU: sealed, it would not fit the u16 length field.
        guard packet.count <= Self.largestTunPacket else {
            stats.droppedMalformed += 1
            return
        }
        switch policy.check(packet) {
        case .drop:
            stats.droppedMalformed += 1
        case let .reply(icmp):
            writeICMP(icmp, now: now, into: &actions)
        case let .send(header):
            guard Subnet.overlay.contains(header.destination) else {
                // Only 400::/7 is routed to the TUN; anything else can never find a route.
                stats.droppedUnroutable += 1
                writeICMP(OutboundPolicy.noRoute(for: packet), now: now, into: &actions)
                return
            }
            guard case let .route(entry) = table.lookup(header.destination), entry.nextHop != nil else {
                switch outboundQueue.enqueue(packet, for: Subnet.slash64(of: header.destination)) {
                case .queued: stats.queued += 1
                case .subnetFull, .full:
                    stats.droppedQueueFull += 1
                    writeICMP(OutboundPolicy.noRoute(for: packet), now: now, into: &actions)
                }
                actions.append(.routeNeeded(header.destination))
                return
            }
            defer { drainOutgoing(now: now, into: &actions) }
            switch sealInPlace(.ipv6, &packet, for: entry.owner, now: now) {
            case .sealed:
                traffic.count(source: header.source, destination: header.destination, bytes: packet.count)
                route(DataPacket(hopLimit: header.hopLimit, source: header.source, destination: header.destination, payload: consume packet),
                      now: now, into: &actions)
            case .wait:
                if sessionWait.enqueue(packet, for: entry.owner.subnet) == .queued { stats.queued += 1 } else { stats.droppedQueueFull += 1 }
            case .refuse:
                stats.droppedNoSession += 1
            case .noKey:
                stats.droppedNoKey += 1
            }
        }
    }

    /// Handshake retries and key expiry; the shell calls it about once a second.
    public mutating func tick(now: Instant, into actions: inout [Action]) {
        sessions?.tick(now: now, into: &outgoing)
        drainOutgoing(now: now, into: &actions)
    }

    // MARK: from a peer, and routing (every node, the originator included)

    /// `packet` is consumed: a packet for us is opened in place in its own payload array.
    public mutating func fromPeer(_ packet: consuming DataPacket, now: Instant, into actions: inout [Action]) {
        stats.peerPacketsIn += 1
        traffic.count(source: packet.source, destination: packet.destination, bytes: packet.payload.count)
        route(consume packet, now: now, into: &actions)
    }

    private mutating func route(_ packet: consuming DataPacket, now: Instant, into actions: inout [Action]) {
        switch HopLimit.step(packet.hopLimit) {
        case .expired:
            stats.droppedHopLimit += 1
            reportOutOfBand(.timeExceeded, about: packet, now: now, into: &actions)
            return
        case let .forward(hop):
            packet.hopLimit = hop
        }
        if identity.subnet.contains(packet.destination) {
            deliverLocally(consume packet, now: now, into: &actions)
            return
        }
        guard Subnet.overlay.contains(packet.destination) else {
            // No node can own it: dropped at once, never queued or looked for.
            stats.droppedUnroutable += 1
            return
        }
        switch table.lookup(packet.destination) {
        case let .route(entry):
            guard let next = entry.nextHop else {
                stats.droppedNoRoute += 1
                reportOutOfBand(.destinationUnreachable(.noRoute), about: packet, now: now, into: &actions)
                return
            }
            if entry.expires - now < ProtocolConstants.routeAlmostExpiredMs {
                actions.append(.routeNeeded(packet.destination))
            }
            actions.append(.toPeer(packet, next))  // counted by the shell once the connection took it
        case .none, .local:
            if forwardQueue.enqueue(packet, for: Subnet.slash64(of: packet.destination)) != .queued {
                stats.droppedQueueFull += 1
                reportOutOfBand(.destinationUnreachable(.noRoute), about: packet, now: now, into: &actions)
            }
            actions.append(.routeNeeded(packet.destination))
        }
    }

    // MARK: messages

    /// Seals a message-bus packet for `destination`'s owner and sends it from our address
    /// (hop limit 64, as Rust). Without a route it is dropped and the route asked for: the
    /// message stack retransmits every 100 ms, so nothing needs to wait here.
    public mutating func sendMessage(_ body: consuming [UInt8], to destination: IPv6Address, now: Instant,
                                     into actions: inout [Action]) {
        guard Subnet.overlay.contains(destination), !identity.subnet.contains(destination) else {
            stats.droppedUnroutable += 1
            return
        }
        guard case let .route(entry) = table.lookup(destination), entry.nextHop != nil else {
            stats.messagesNoRoute += 1
            actions.append(.routeNeeded(destination))
            return
        }
        defer { drainOutgoing(now: now, into: &actions) }
        var sealed = body
        guard sealInPlace(.message, &sealed, for: entry.owner, now: now) == .sealed else {
            stats.messagesNoRoute += 1
            return
        }
        stats.messagesOut += 1
        route(DataPacket(hopLimit: Self.originHopLimit, source: identity.address, destination: destination, payload: sealed),
              now: now, into: &actions)
    }

    // MARK: local delivery

    private mutating func deliverLocally(_ packet: consuming DataPacket, now: Instant, into actions: inout [Action]) {
        guard Subnet.overlay.contains(packet.source), !identity.subnet.contains(packet.source) else {
            // No key can ever open it: outside the overlay, or claiming to come from us.
            stats.droppedUnroutable += 1
            return
        }
        guard case let .route(entry) = table.lookup(packet.source) else {
            // We do not know the sender's key yet: ask for its route, hold the packet.
            if inboundQueue.enqueue(packet, for: Subnet.slash64(of: packet.source)) != .queued { stats.droppedQueueFull += 1 }
            actions.append(.routeNeeded(packet.source))
            return
        }
        defer { drainOutgoing(now: now, into: &actions) }
        let owner = entry.owner
        // Opened in place: from here on the payload array holds the body (one buffer from the
        // peer's frame to the TUN write).
        var body: [UInt8] = []
        swap(&body, &packet.payload)
        let opened: UserHeader?
        var viaSession = false
        switch sessions?.open(&body, from: owner, now: now, into: &outgoing) {
        case let .opened(header)?:
            opened = header
            viaSession = true
        case .replay?:
            return  // counted by the session table
        case .failed?:
            stats.decryptFailures += 1
            sessions?.probe(owner, now: now, into: &outgoing)
            return
        case .notSession?, nil:
            // The static scheme: refuse a nonce this sender already used, then open.
            let fingerprint = NonceFilter.fingerprint(of: body)
            if let fingerprint, nonces.seen(fingerprint, from: owner, now: now) {
                stats.replaysDropped += 1
                return
            }
            guard let cipher = cipher(for: owner) else { stats.droppedNoKey += 1; return }
            do { opened = try cipher.openInPlace(&body) } catch {
                stats.decryptFailures += 1
                sessions?.probe(owner, now: now, into: &outgoing)
                return
            }
            if let fingerprint { nonces.record(fingerprint, from: owner, now: now) }
        }
        guard let header = opened else { stats.droppedMalformed += 1; return }
        switch header.type {
        case .ipv6, .message, .outOfBandICMP:
            if !viaSession, let s = sessions, !s.acceptsStatic(from: owner, now: now) {
                stats.downgradesRefused += 1
                // It may have fallen back while we did not: offer a session (rate-limited).
                sessions?.probe(owner, now: now, into: &outgoing)
                return
            }
        case .sessionInit, .sessionResponse:
            guard !viaSession else { stats.droppedMalformed += 1; return }
        case .sessionConfirm:
            guard viaSession else { stats.droppedMalformed += 1; return }
        }
        switch header.type {
        case .ipv6:
            switch InboundPolicy.check(inner: body, outerSource: packet.source, outerDestination: packet.destination) {
            case .deliver: break
            case .malformed:
                stats.droppedMalformed += 1
                return
            case .spoofedSource:
                stats.droppedSpoofed += 1
                actions.append(.audit(DatapathAudit("inner source differs from the sender", packet, inner: body)))
                return
            case .foreignDestination:
                stats.droppedSpoofed += 1
                actions.append(.audit(DatapathAudit("inner destination differs from the outer one", packet, inner: body)))
                return
            }
            HopLimit.stamp(&body, hopLimit: packet.hopLimit)
            stats.delivered += 1
            actions.append(.toTun(body))
        case .message:
            stats.messagesIn += 1
            actions.append(.message(body, source: packet.source, key: owner, destination: packet.destination))
        case .outOfBandICMP:
            deliverOutOfBand(body[...], outer: packet, now: now, into: &actions)
        case .sessionInit:
            guard sessions != nil else { stats.sessionMessagesIgnored += 1; return }
            sessions?.receivedInit(body, from: owner, now: now, into: &outgoing)
        case .sessionResponse:
            guard sessions != nil else { stats.sessionMessagesIgnored += 1; return }
            sessions?.receivedResponse(body, from: owner, now: now, into: &outgoing)
        case .sessionConfirm:
            break  // its work (confirming the session) is done by opening it
        }
    }

    private mutating func deliverOutOfBand(_ body: ArraySlice<UInt8>, outer: DataPacket, now: Instant, into actions: inout [Action]) {
        guard let report = try? OutOfBandICMP(decoding: Array(body)) else {
            stats.droppedMalformed += 1
            return
        }
        guard InboundPolicy.checkReport(report, outerSource: outer.source, localSubnet: identity.subnet) else {
            stats.droppedSpoofed += 1
            actions.append(.audit(DatapathAudit("out-of-band ICMP inconsistent with its reporter", outer, inner: nil)))
            return
        }
        // The quoted payload must open with the key of its destination and hold a packet we
        // sent there: only then did we really send what the reporter says it dropped.
        guard case let .route(entry) = table.lookup(report.originalDestination),
              let cipher = sessions?.cipherOfSent(report.originalPayload, to: entry.owner) ?? cipher(for: entry.owner),
              let original = try? cipher.openSplit(report.originalPayload).body,
              !original.isEmpty,
              InboundPolicy.checkReportedPacket(original[...], report: report) else {
            stats.droppedSpoofed += 1
            actions.append(.audit(DatapathAudit("out-of-band ICMP about a packet we did not send", outer, inner: nil)))
            return
        }
        stats.delivered += 1
        actions.append(.toTun(report.reconstruct(originalPacket: original, localAddress: identity.address,
                                                 hopLimit: outer.hopLimit)))
    }

    /// Tells the source of `packet` (encrypted, to its key) why it went no further (§4.6).
    private mutating func reportOutOfBand(_ message: ICMPv6.Message, about packet: DataPacket, now: Instant,
                                          into actions: inout [Action]) {
        guard !identity.subnet.contains(packet.source), Subnet.overlay.contains(packet.source) else { return }
        guard outOfBandBudget.take(now: now.milliseconds) else {
            stats.icmpRateLimited += 1
            return
        }
        guard case let .route(entry) = table.lookup(packet.source), entry.nextHop != nil else {
            actions.append(.routeNeeded(packet.source))
            return
        }
        let report = OutOfBandICMP(message: message, reporterSubnet: identity.subnet, originalSource: packet.source,
                                   originalDestination: packet.destination, originalPayload: packet.payload)
        var sealed = report.encode()  // rare: sealing grows it, no seal room needed
        guard sealInPlace(.outOfBandICMP, &sealed, for: entry.owner, now: now) == .sealed else { return }
        route(DataPacket(hopLimit: Self.originHopLimit, source: identity.subnet.ipv6!, destination: packet.source, payload: sealed),
              now: now, into: &actions)
        drainOutgoing(now: now, into: &actions)
    }

    // MARK: sessions

    enum Sealed {
        case sealed
        /// No session yet, one is coming, and static would be refused: hold it.
        case wait
        /// No session, none coming soon, static refused: drop it.
        case refuse
        case noKey
    }

    /// Seals `packet` for `owner` in its own array: with its session when one is up, else its
    /// static key (and a handshake is started in `outgoing`). `packet` is untouched unless
    /// `.sealed`.
    private mutating func sealInPlace(_ type: UserHeader.PayloadType, _ packet: inout [UInt8], for owner: PublicKey,
                                      now: Instant) -> Sealed {
        switch sessions?.sealing(for: owner, now: now, into: &outgoing) {
        case let .session(cipher, index, counter)?:
            cipher.sealInPlace(UserHeader(type: type), &packet, index: index, counter: counter)
            return .sealed
        case .wait?:
            return .wait
        case .refuse?:
            return .refuse
        case .staticKey?, nil:
            guard let cipher = cipher(for: owner) else { return .noKey }
            cipher.sealInPlace(UserHeader(type: type), &packet)
            return .sealed
        }
    }

    /// Sends what the session table asked for; re-entrant calls leave it to the outer one.
    private mutating func drainOutgoing(now: Instant, into actions: inout [Action]) {
        guard !draining, !outgoing.isEmpty else { return }
        draining = true
        defer { draining = false }
        var rounds = 0
        while !outgoing.isEmpty, rounds < 64 {  // each round's work is bounded; so are the rounds
            rounds += 1
            let batch = outgoing
            outgoing.removeAll(keepingCapacity: true)
            for item in batch {
                switch item {
                case let .handshake(peer, type, body):
                    guard let cipher = cipher(for: peer) else { stats.droppedNoKey += 1; continue }
                    route(DataPacket(hopLimit: Self.originHopLimit, source: identity.address, destination: peer.overlayAddress,
                                     payload: cipher.seal(UserHeader(type: type), body)), now: now, into: &actions)
                case let .confirm(peer):
                    guard case let .session(cipher, index, counter)? = sessions?.sealing(for: peer, now: now, into: &outgoing) else { continue }
                    route(DataPacket(hopLimit: Self.originHopLimit, source: identity.address, destination: peer.overlayAddress,
                                     payload: cipher.seal(UserHeader(type: .sessionConfirm), [], index: index, counter: counter)),
                          now: now, into: &actions)
                case let .established(peer):
                    for packet in sessionWait.take(peer.subnet) { fromTun(packet, now: now, into: &actions, counted: true) }
                case let .failed(peer):
                    let waiting = sessionWait.take(peer.subnet)
                    if sessions?.requireSessions == true {
                        stats.droppedNoSession += UInt64(waiting.count)
                    } else {
                        for packet in waiting { fromTun(packet, now: now, into: &actions, counted: true) }
                    }
                }
            }
        }
    }

    // MARK: helpers

    /// The cipher for `owner`'s key: cached (least recently used evicted), else one X25519.
    private mutating func cipher(for owner: PublicKey) -> PacketCipher? {
        if let c = ciphers.get(owner) { return c }
        guard var secret = identity.secretKey.sharedSecret(with: owner) else { return nil }
        defer { SecureMemory.wipe(&secret) }  // OpenSSL keeps its own key schedule
        let c = PacketCipher(key: secret)
        if ciphers.set(owner, c) != nil { stats.cipherEvictions += 1 }
        return c
    }

    /// An ICMPv6 error for the TUN, within its rate limit.
    private mutating func writeICMP(_ icmp: [UInt8]?, now: Instant, into actions: inout [Action]) {
        guard let icmp else { return }
        guard tunICMPBudget.take(now: now.milliseconds) else {
            stats.icmpRateLimited += 1
            return
        }
        actions.append(.toTun(icmp))
    }
}

/// Why a decrypted packet was refused, for the audit log (the shell rate-limits the lines).
public struct DatapathAudit: Hashable, Sendable {
    public let message: String
    public let outerSource: IPv6Address
    public let outerDestination: IPv6Address
    public let innerSource: IPv6Address?
    public let innerDestination: IPv6Address?

    init(_ message: String, _ packet: DataPacket, inner: [UInt8]?) {
        self.message = message
        outerSource = packet.source
        outerDestination = packet.destination
        let header = inner.flatMap { IPv6Header($0) }
        innerSource = header?.source
        innerDestination = header?.destination
    }
}
