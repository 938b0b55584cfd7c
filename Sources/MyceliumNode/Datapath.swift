public import MyceliumCore
public import MyceliumCrypto
public import MyceliumRouting
public import MyceliumSystem
import NIOCore

/// The data plane (spec §4), on the router's loop.
///
/// Flow, from the TUN: checks and ICMPv6 replies (§4.3) → forwarding-table lookup → seal with
/// the destination owner's key → route (hop limit − 1) → next hop's connection. Queued while a
/// route is looked for.
/// Flow, from a peer: hop limit − 1 (§4.4) → not ours: forward still encrypted → ours: open
/// with the source owner's key → TUN (hop limit stamped into the IPv6 header, §4.5) or
/// out-of-band ICMP (§4.6).
public final class Datapath: @unchecked Sendable {
    private let identity: NodeIdentity
    private let service: RouterService
    private let tun: TunDevice?
    private let policy: OutboundPolicy
    private var table: ForwardingTable
    private var ciphers: [PublicKey: PacketCipher] = [:]
    /// Plaintext IPv6 packets from the TUN waiting for a route.
    private var outboundQueue = PacketQueue<[UInt8]>.outbound()
    /// Encrypted packets to forward, waiting for a route.
    private var forwardQueue = PacketQueue<DataPacket>.outbound()
    /// Encrypted packets for us, waiting for the sender's key.
    private var inboundQueue = PacketQueue<DataPacket>.inbound()
    public private(set) var stats = DatapathStats()
    public private(set) var traffic = TrafficCounters()

    /// The hop limit of packets the node originates itself (OOB ICMP, messages).
    static let originHopLimit: UInt8 = 64

    public init(identity: NodeIdentity, service: RouterService, tun: TunDevice?) {
        self.identity = identity
        self.service = service
        self.tun = tun
        self.policy = OutboundPolicy(nodeAddress: identity.address)
        self.table = .empty(localSubnet: identity.subnet)
    }

    // MARK: router events

    public func tableChanged(_ table: ForwardingTable) { self.table = table }

    public func routeEvent(_ action: RouterAction) {
        switch action {
        case let .routeAcquired(subnet):
            for packet in outboundQueue.take(subnet) { fromTun(packet) }
            for packet in forwardQueue.take(subnet) { route(packet) }
            for packet in inboundQueue.take(subnet) { deliverLocally(packet) }
        case let .routeLost(subnet), let .queryFailed(subnet):
            for packet in outboundQueue.take(subnet) {
                stats.droppedNoRoute += 1
                if let icmp = OutboundPolicy.noRoute(for: packet) { writeTun(icmp) }
            }
            stats.droppedNoRoute += UInt64(forwardQueue.take(subnet).count + inboundQueue.take(subnet).count)
        default:
            break
        }
    }

    // MARK: from the TUN

    public func fromTun(_ packet: [UInt8]) {
        stats.tunPacketsIn += 1
        stats.tunBytesIn += UInt64(packet.count)
        switch policy.check(packet) {
        case .drop:
            stats.droppedMalformed += 1
        case let .reply(icmp):
            writeTun(icmp)
        case let .send(header):
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
            if let icmp = OutboundPolicy.noRoute(for: packet) { writeTun(icmp) }
        }
    }

    // MARK: routing (every node, the originator included)

    /// Packets waiting for a route or a key.
    public var queuedPackets: Int { outboundQueue.count + forwardQueue.count + inboundQueue.count }

    public func fromPeer(_ packet: DataPacket, neighbour: NeighbourId) {
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
            if service.send(.data(packet), to: next) {
                stats.peerPacketsOut += 1
            } else {
                stats.droppedNoRoute += 1
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
            guard inner.count >= IPv6Header.length else { stats.droppedMalformed += 1; return }
            HopLimit.stamp(&inner, hopLimit: packet.hopLimit)
            stats.delivered += 1
            writeTun(inner)
        case .message:
            stats.messagesUnsupported += 1  // the message bus comes later
        case .outOfBandICMP:
            deliverOutOfBand(plaintext[UserHeader.length...], hopLimit: packet.hopLimit)
        }
    }

    private func deliverOutOfBand(_ body: ArraySlice<UInt8>, hopLimit: UInt8) {
        guard let report = try? OutOfBandICMP(decoding: Array(body)),
              case let .route(entry) = table.lookup(report.originalDestination),
              let cipher = cipher(for: entry.owner),
              let original = try? cipher.open(report.originalPayload),
              original.count > UserHeader.length else {
            stats.droppedMalformed += 1
            return
        }
        writeTun(report.reconstruct(originalPacket: Array(original[UserHeader.length...]), localAddress: identity.address,
                                    hopLimit: hopLimit))
    }

    /// Tells the source of `packet` (encrypted, to its key) why it went no further (§4.6).
    private func reportOutOfBand(_ message: ICMPv6.Message, about packet: DataPacket) {
        guard !identity.subnet.contains(packet.source) else { return }
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
        guard let secret = identity.secretKey.sharedSecret(with: owner) else { return nil }
        let c = PacketCipher(key: secret)
        ciphers[owner] = c
        return c
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
}
