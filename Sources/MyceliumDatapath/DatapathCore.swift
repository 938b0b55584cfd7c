public import MyceliumCore
public import MyceliumCrypto
public import MyceliumRouting

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

    /// The hop limit of packets the node originates itself (OOB ICMP, messages).
    public static let originHopLimit: UInt8 = 64
    /// The largest IPv6 packet whose sealed form (user header, tag, nonce) fits a data packet.
    public static let largestTunPacket = DataPacket.maxPayloadLength - UserHeader.length - EncryptedPayload.overhead

    public init(identity: NodeIdentity, cipherCache: Int = DatapathLimits.cipherCache, now: Instant) {
        self.identity = identity
        self.policy = OutboundPolicy(nodeAddress: identity.address)
        self.table = .empty(localSubnet: identity.subnet)
        self.ciphers = LRUCache(capacity: cipherCache)
        tunICMPBudget = TokenBucket(burst: DatapathLimits.tunICMPBurst, rate: DatapathLimits.tunICMPPerSecond, perMs: 1000,
                                    now: now.milliseconds)
        outOfBandBudget = TokenBucket(burst: DatapathLimits.outOfBandBurst, rate: DatapathLimits.outOfBandPerSecond, perMs: 1000,
                                      now: now.milliseconds)
    }

    /// Packets waiting for a route or a key.
    public var queuedPackets: Int { outboundQueue.count + forwardQueue.count + inboundQueue.count }
    /// Peers whose cipher is cached.
    public var cachedCiphers: Int { ciphers.count }

    // MARK: router events

    public mutating func tableChanged(_ table: ForwardingTable) {
        self.table = table
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

    public mutating func fromTun(_ packet: [UInt8], now: Instant, into actions: inout [Action]) {
        fromTun(packet, now: now, into: &actions, counted: false)
    }

    private mutating func fromTun(_ packet: [UInt8], now: Instant, into actions: inout [Action], counted: Bool) {
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
            guard let cipher = cipher(for: entry.owner) else { stats.droppedNoKey += 1; return }
            let sealed = cipher.seal(UserHeader(type: .ipv6), packet)
            traffic.count(source: header.source, destination: header.destination, bytes: sealed.count)
            route(DataPacket(hopLimit: header.hopLimit, source: header.source, destination: header.destination, payload: sealed),
                  now: now, into: &actions)
        }
    }

    // MARK: from a peer, and routing (every node, the originator included)

    public mutating func fromPeer(_ packet: DataPacket, now: Instant, into actions: inout [Action]) {
        stats.peerPacketsIn += 1
        traffic.count(source: packet.source, destination: packet.destination, bytes: packet.payload.count)
        route(packet, now: now, into: &actions)
    }

    private mutating func route(_ packet: DataPacket, now: Instant, into actions: inout [Action]) {
        var packet = packet
        switch HopLimit.step(packet.hopLimit) {
        case .expired:
            stats.droppedHopLimit += 1
            reportOutOfBand(.timeExceeded, about: packet, now: now, into: &actions)
            return
        case let .forward(hop):
            packet.hopLimit = hop
        }
        if identity.subnet.contains(packet.destination) {
            deliverLocally(packet, now: now, into: &actions)
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

    // MARK: local delivery

    private mutating func deliverLocally(_ packet: DataPacket, now: Instant, into actions: inout [Action]) {
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
        guard let cipher = cipher(for: entry.owner) else { stats.droppedNoKey += 1; return }
        let opened: (header: UserHeader?, body: [UInt8])
        do { opened = try cipher.openSplit(packet.payload) } catch {
            stats.decryptFailures += 1
            return
        }
        guard let header = opened.header else { stats.droppedMalformed += 1; return }
        switch header.type {
        case .ipv6:
            var inner = opened.body
            switch InboundPolicy.check(inner: inner, outerSource: packet.source, outerDestination: packet.destination) {
            case .deliver: break
            case .malformed:
                stats.droppedMalformed += 1
                return
            case .spoofedSource:
                stats.droppedSpoofed += 1
                actions.append(.audit(DatapathAudit("inner source differs from the sender", packet, inner: inner)))
                return
            case .foreignDestination:
                stats.droppedSpoofed += 1
                actions.append(.audit(DatapathAudit("inner destination differs from the outer one", packet, inner: inner)))
                return
            }
            HopLimit.stamp(&inner, hopLimit: packet.hopLimit)
            stats.delivered += 1
            actions.append(.toTun(inner))
        case .message:
            stats.messagesUnsupported += 1  // the message bus comes later
        case .outOfBandICMP:
            deliverOutOfBand(opened.body[...], outer: packet, into: &actions)
        }
    }

    private mutating func deliverOutOfBand(_ body: ArraySlice<UInt8>, outer: DataPacket, into actions: inout [Action]) {
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
              let cipher = cipher(for: entry.owner),
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
        guard case let .route(entry) = table.lookup(packet.source), entry.nextHop != nil,
              let cipher = cipher(for: entry.owner) else {
            actions.append(.routeNeeded(packet.source))
            return
        }
        let report = OutOfBandICMP(message: message, reporterSubnet: identity.subnet, originalSource: packet.source,
                                   originalDestination: packet.destination, originalPayload: packet.payload)
        let sealed = cipher.seal(UserHeader(type: .outOfBandICMP), report.encode())
        route(DataPacket(hopLimit: Self.originHopLimit, source: identity.subnet.ipv6!, destination: packet.source, payload: sealed),
              now: now, into: &actions)
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
