public import MyceliumCore
public import MyceliumCrypto
public import MyceliumRouting
public import MyceliumSystem
import Logging
import NIOCore

/// The data plane (spec §4), on the router's loop.
///
/// Flow, from the TUN: checks and ICMPv6 replies (§4.3) → forwarding-table lookup → seal with
/// the destination owner's key → route (hop limit − 1) → next hop's connection. Queued while a
/// route is looked for.
/// Flow, from a peer: hop limit − 1 (§4.4) → not ours: forward still encrypted (destinations
/// outside 400::/7 dropped at once) → ours: open with the source owner's key → inner header
/// checked against the outer one (`InboundPolicy`) → TUN (hop limit stamped into the IPv6
/// header, §4.5) or out-of-band ICMP, itself checked against what we sent (§4.6).
///
/// Confinement: every method runs on the router's loop (`assertInEventLoop` at each entry
/// point, debug builds); `@unchecked Sendable` only so the TUN reader and peers can capture it
/// in closures they run on that loop.
public final class Datapath: @unchecked Sendable {
    private let identity: NodeIdentity
    private let service: RouterService
    private let tun: TunDevice?
    private let policy: OutboundPolicy
    private let audit: AuditLog?
    private var table: ForwardingTable
    private var ciphers: [PublicKey: PacketCipher] = [:]
    /// Plaintext IPv6 packets from the TUN waiting for a route.
    private var outboundQueue = PacketQueue<[UInt8]>(limits: .outbound)
    /// Encrypted packets to forward, waiting for a route.
    private var forwardQueue = PacketQueue<DataPacket>(limits: .forward)
    /// Encrypted packets for us, waiting for the sender's key.
    private var inboundQueue = PacketQueue<DataPacket>(limits: .inbound)
    /// ICMPv6 errors written to the TUN, and out-of-band reports sent to sources.
    private var tunICMPBudget = TokenBucket(burst: DatapathLimits.tunICMPBurst, rate: DatapathLimits.tunICMPPerSecond, perMs: 1000)
    private var outOfBandBudget = TokenBucket(burst: DatapathLimits.outOfBandBurst, rate: DatapathLimits.outOfBandPerSecond,
                                              perMs: 1000)
    public private(set) var stats = DatapathStats()
    public private(set) var traffic = TrafficCounters()

    /// The hop limit of packets the node originates itself (OOB ICMP, messages).
    static let originHopLimit: UInt8 = 64
    /// The largest IPv6 packet whose sealed form (user header, tag, nonce) fits a data packet.
    static let largestTunPacket = DataPacket.maxPayloadLength - UserHeader.length - EncryptedPayload.overhead

    public init(identity: NodeIdentity, service: RouterService, tun: TunDevice?, audit: AuditLog? = nil) {
        self.identity = identity
        self.service = service
        self.tun = tun
        self.audit = audit
        self.policy = OutboundPolicy(nodeAddress: identity.address)
        self.table = .empty(localSubnet: identity.subnet)
    }

    // MARK: router events

    public func tableChanged(_ table: ForwardingTable) {
        service.loop.assertInEventLoop()
        self.table = table
    }

    public func routeEvent(_ action: RouterAction) {
        service.loop.assertInEventLoop()
        switch action {
        case let .routeAcquired(subnet):
            for packet in outboundQueue.take(subnet) { fromTun(packet) }
            for packet in forwardQueue.take(subnet) { route(packet) }
            for packet in inboundQueue.take(subnet) { deliverLocally(packet) }
        case let .routeLost(subnet), let .queryFailed(subnet):
            for packet in outboundQueue.take(subnet) {
                stats.droppedNoRoute += 1
                writeICMP(OutboundPolicy.noRoute(for: packet))
            }
            stats.droppedNoRoute += UInt64(forwardQueue.take(subnet).count + inboundQueue.take(subnet).count)
        default:
            break
        }
    }

    // MARK: from the TUN

    /// Packets the TUN reader dropped because too many were already waiting for us.
    func tunBacklogDropped(_ packets: UInt64) { stats.droppedTunBacklog += packets }

    public func fromTun(_ packet: [UInt8]) {
        service.loop.assertInEventLoop()
        stats.tunPacketsIn += 1
        stats.tunBytesIn += UInt64(packet.count)
        // Only if someone raised the TUN's MTU: sealed, it would not fit the u16 length field.
        guard packet.count <= Self.largestTunPacket else {
            stats.droppedMalformed += 1
            return
        }
        switch policy.check(packet) {
        case .drop:
            stats.droppedMalformed += 1
        case let .reply(icmp):
            writeICMP(icmp)
        case let .send(header):
            guard Subnet.overlay.contains(header.destination) else {
                // Only 400::/7 is routed to the TUN; anything else can never find a route.
                stats.droppedUnroutable += 1
                writeICMP(OutboundPolicy.noRoute(for: packet))
                return
            }
            let subnet = Subnet.slash64(of: header.destination)
            guard case let .route(entry) = table.lookup(header.destination), entry.nextHop != nil else {
                queueOutbound(packet, subnet: subnet)
                service.routeNeeded(header.destination)
                return
            }
            guard let cipher = cipher(for: entry.owner) else { stats.droppedNoKey += 1; return }
            let sealed = cipher.seal(UserHeader(type: .ipv6).bytes + packet)
            traffic.count(source: header.source, destination: header.destination, bytes: sealed.count)
            route(DataPacket(hopLimit: header.hopLimit, source: header.source, destination: header.destination, payload: sealed))
        }
    }

    private func queueOutbound(_ packet: [UInt8], subnet: Subnet) {
        switch outboundQueue.enqueue(packet, for: subnet) {
        case .queued: stats.queued += 1
        case .subnetFull, .full:
            stats.droppedQueueFull += 1
            writeICMP(OutboundPolicy.noRoute(for: packet))
        }
    }

    // MARK: routing (every node, the originator included)

    /// Packets waiting for a route or a key.
    public var queuedPackets: Int { outboundQueue.count + forwardQueue.count + inboundQueue.count }

    public func fromPeer(_ packet: DataPacket, neighbour: NeighbourId) {
        service.loop.assertInEventLoop()
        stats.peerPacketsIn += 1
        traffic.count(source: packet.source, destination: packet.destination, bytes: packet.payload.count)
        route(packet)
    }

    func route(_ packet: DataPacket) {
        var packet = packet
        switch HopLimit.step(packet.hopLimit) {
        case .expired:
            stats.droppedHopLimit += 1
            reportOutOfBand(.timeExceeded, about: packet)
            return
        case let .forward(hop):
            packet.hopLimit = hop
        }
        if identity.subnet.contains(packet.destination) {
            deliverLocally(packet)
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
                reportOutOfBand(.destinationUnreachable(.noRoute), about: packet)
                return
            }
            if entry.expires - RouterService.now() < ProtocolConstants.routeAlmostExpiredMs {
                service.routeNeeded(packet.destination)
            }
            switch service.send(.data(packet), to: next) {
            case .queued: stats.peerPacketsOut += 1
            case .gone: stats.droppedNoRoute += 1
            case .busy: stats.droppedPeerBusy += 1
            }
        case .none, .local:
            let subnet = Subnet.slash64(of: packet.destination)
            if forwardQueue.enqueue(packet, for: subnet) != .queued {
                stats.droppedQueueFull += 1
                reportOutOfBand(.destinationUnreachable(.noRoute), about: packet)
            }
            service.routeNeeded(packet.destination)
        }
    }

    // MARK: local delivery

    func deliverLocally(_ packet: DataPacket) {
        guard Subnet.overlay.contains(packet.source), !identity.subnet.contains(packet.source) else {
            // No key can ever open it: outside the overlay, or claiming to come from us.
            stats.droppedUnroutable += 1
            return
        }
        guard case let .route(entry) = table.lookup(packet.source) else {
            // We do not know the sender's key yet: ask for its route, hold the packet.
            if inboundQueue.enqueue(packet, for: Subnet.slash64(of: packet.source)) != .queued { stats.droppedQueueFull += 1 }
            service.routeNeeded(packet.source)
            return
        }
        guard let cipher = cipher(for: entry.owner) else { stats.droppedNoKey += 1; return }
        let plaintext: [UInt8]
        do { plaintext = try cipher.open(packet.payload) } catch {
            stats.decryptFailures += 1
            return
        }
        guard let header = try? UserHeader(decoding: plaintext) else { stats.droppedMalformed += 1; return }
        switch header.type {
        case .ipv6:
            var inner = Array(plaintext[UserHeader.length...])
            switch InboundPolicy.check(inner: inner, outerSource: packet.source, outerDestination: packet.destination) {
            case .deliver: break
            case .malformed:
                stats.droppedMalformed += 1
                return
            case .spoofedSource:
                stats.droppedSpoofed += 1
                lie("inner source differs from the sender", packet, inner: inner)
                return
            case .foreignDestination:
                stats.droppedSpoofed += 1
                lie("inner destination differs from the outer one", packet, inner: inner)
                return
            }
            HopLimit.stamp(&inner, hopLimit: packet.hopLimit)
            stats.delivered += 1
            writeTun(inner)
        case .message:
            stats.messagesUnsupported += 1  // the message bus comes later
        case .outOfBandICMP:
            deliverOutOfBand(plaintext[UserHeader.length...], outer: packet)
        }
    }

    private func deliverOutOfBand(_ body: ArraySlice<UInt8>, outer: DataPacket) {
        guard let report = try? OutOfBandICMP(decoding: Array(body)) else {
            stats.droppedMalformed += 1
            return
        }
        guard InboundPolicy.checkReport(report, outerSource: outer.source, localSubnet: identity.subnet) else {
            stats.droppedSpoofed += 1
            lie("out-of-band ICMP inconsistent with its reporter", outer, inner: nil)
            return
        }
        // The quoted payload must open with the key of its destination and hold a packet we
        // sent there: only then did we really send what the reporter says it dropped.
        guard case let .route(entry) = table.lookup(report.originalDestination),
              let cipher = cipher(for: entry.owner),
              let original = try? cipher.open(report.originalPayload),
              original.count > UserHeader.length,
              InboundPolicy.checkReportedPacket(original[UserHeader.length...], report: report) else {
            stats.droppedSpoofed += 1
            lie("out-of-band ICMP about a packet we did not send", outer, inner: nil)
            return
        }
        writeTun(report.reconstruct(originalPacket: Array(original[UserHeader.length...]), localAddress: identity.address,
                                    hopLimit: outer.hopLimit))
    }

    /// An audit line for a packet whose sealer lied about what is inside.
    private func lie(_ what: String, _ packet: DataPacket, inner: [UInt8]?) {
        var meta: Logger.Metadata = ["outerSource": "\(packet.source)", "outerDestination": "\(packet.destination)"]
        if let inner, let h = IPv6Header(inner) {
            meta["innerSource"] = "\(h.source)"
            meta["innerDestination"] = "\(h.destination)"
        }
        audit?.record("spoofed-packet", "dropped a data packet: \(what)", metadata: meta)
    }

    /// Tells the source of `packet` (encrypted, to its key) why it went no further (§4.6).
    private func reportOutOfBand(_ message: ICMPv6.Message, about packet: DataPacket) {
        guard !identity.subnet.contains(packet.source), Subnet.overlay.contains(packet.source) else { return }
        guard outOfBandBudget.take(now: RouterService.now().milliseconds) else {
            stats.icmpRateLimited += 1
            return
        }
        guard case let .route(entry) = table.lookup(packet.source), entry.nextHop != nil,
              let cipher = cipher(for: entry.owner) else {
            service.routeNeeded(packet.source)
            return
        }
        let report = OutOfBandICMP(message: message, reporterSubnet: identity.subnet, originalSource: packet.source,
                                   originalDestination: packet.destination, originalPayload: packet.payload)
        let sealed = cipher.seal(UserHeader(type: .outOfBandICMP).bytes + report.encode())
        route(DataPacket(hopLimit: Self.originHopLimit, source: identity.subnet.ipv6!, destination: packet.source, payload: sealed))
    }

    // MARK: helpers

    private func cipher(for owner: PublicKey) -> PacketCipher? {
        if let c = ciphers[owner] { return c }
        guard var secret = identity.secretKey.sharedSecret(with: owner) else { return nil }
        defer { SecureMemory.wipe(&secret) }  // OpenSSL keeps its own key schedule
        if ciphers.count >= DatapathLimits.cipherCache {
            // Bounded: drop an arbitrary entry (hash order); a busy key is rebuilt on its next
            // packet for the price of one X25519.
            ciphers.remove(at: ciphers.startIndex)
            stats.cipherEvictions += 1
        }
        let c = PacketCipher(key: secret)
        ciphers[owner] = c
        return c
    }

    /// Writes an ICMPv6 error to the TUN within its rate limit.
    private func writeICMP(_ icmp: [UInt8]?) {
        guard let icmp else { return }
        guard tunICMPBudget.take(now: RouterService.now().milliseconds) else {
            stats.icmpRateLimited += 1
            return
        }
        writeTun(icmp)
    }

    private func writeTun(_ packet: [UInt8]) {
        guard let tun else { stats.droppedNoTun += 1; return }
        let ok = (try? packet.withUnsafeBytes { try tun.write($0) }) ?? false
        if ok {
            stats.tunPacketsOut += 1
            stats.tunBytesOut += UInt64(packet.count)
        } else {
            stats.droppedTunFull += 1
        }
    }
}

/// Datapath counters.
public struct DatapathStats: Hashable, Sendable {
    public var tunPacketsIn: UInt64 = 0
    public var tunBytesIn: UInt64 = 0
    public var tunPacketsOut: UInt64 = 0
    public var tunBytesOut: UInt64 = 0
    public var peerPacketsIn: UInt64 = 0
    public var peerPacketsOut: UInt64 = 0
    public var delivered: UInt64 = 0
    public var queued: UInt64 = 0
    public var droppedMalformed: UInt64 = 0
    public var droppedNoRoute: UInt64 = 0
    public var droppedNoKey: UInt64 = 0
    public var droppedHopLimit: UInt64 = 0
    public var droppedQueueFull: UInt64 = 0
    public var droppedTunFull: UInt64 = 0
    public var droppedNoTun: UInt64 = 0
    public var decryptFailures: UInt64 = 0
    public var messagesUnsupported: UInt64 = 0
    /// Destination (or, for us, source) outside 400::/7, or a source in our own /64.
    public var droppedUnroutable: UInt64 = 0
    /// Decrypted packets whose inner header or OOB report contradicts the outer header.
    public var droppedSpoofed: UInt64 = 0
    /// Data for a peer whose outbox is above its high-water mark.
    public var droppedPeerBusy: UInt64 = 0
    /// ICMPv6 errors and out-of-band reports not sent: over their rate.
    public var icmpRateLimited: UInt64 = 0
    /// TUN batches dropped because the loop had too many waiting.
    public var droppedTunBacklog: UInt64 = 0
    public var cipherEvictions: UInt64 = 0

}

/// The datapath's own limits (not protocol constants; docs/security.md).
public enum DatapathLimits {
    /// Peers whose AES-GCM context is kept.
    public static let cipherCache = 4096
    /// ICMPv6 errors written to the TUN: burst, then per second.
    public static let tunICMPBurst = 100
    public static let tunICMPPerSecond = 100
    /// Out-of-band ICMP reports sent to sources of packets we could not forward.
    public static let outOfBandBurst = 50
    public static let outOfBandPerSecond = 10
    /// Packets read from the TUN waiting for the loop (counted in packets: under load the
    /// reader wakes for one or two at a time); more are dropped, so a local flood cannot grow
    /// memory (4096 × 1400 bytes ≈ 6 MB at most).
    public static let tunBacklogPackets = 4096
}
