public import MyceliumCore
public import MyceliumQUIC
public import MyceliumRouting
public import MyceliumDatapath
import NIOCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A route as the API shows it (Rust's `Route`).
public struct RouteView: Hashable, Sendable {
    public let subnet: Subnet
    /// `TCP [local]:port <-> [remote]:port`.
    public let nextHop: String
    /// As advertised by the neighbour, without our link cost.
    public let metric: Metric
    public let seqno: UInt16

    public init(subnet: Subnet, nextHop: String, metric: Metric, seqno: UInt16) {
        self.subnet = subnet
        self.nextHop = nextHop
        self.metric = metric
        self.seqno = seqno
    }
}

/// Everything the counters and gauges of `/metrics` are read from: the router's at one moment on
/// its loop, the rest just after on the datapath's.
public struct NodeCounters: Sendable {
    public let router: RouterStats
    /// Control packets and route requests dropped on their way to the router's loop, while
    /// `RouterService.crossingLimit` waited.
    public let routerInputDropped: Int
    public let datapath: DatapathStats
    public let selectedRoutes: Int
    public let queuedPackets: Int
    public let connectedPeers: Int
    /// Zero when discovery is off.
    public let discovery: LANDiscovery.Stats
    public let tlsFailures: UInt64
    /// Peers' key proofs (`?key=`): answered, verified, failed, dropped.
    public let keyProofs: PeerManager.KeyProofStats
    /// Inbound connections refused by a connection limit.
    public let inboundRefused: UInt64
    /// Peers found on the LAN and not dialled (discovery limits).
    public let discoveryRefused: UInt64
    /// The QUIC socket's drops and timeouts (zero without QUIC).
    public let quic: QUICEndpoint.Counters
    /// Peer lookups through DNS; zero without `--peer-dns`.
    public let peerDNS: PeerDNSPlan.Stats
    public let peerDNSEndpoints: Int
    public let messages: MessageStats
    /// Received messages waiting to be read, and their bytes.
    public let inboxMessages: Int
    public let inboxBytes: Int
}

/// Read-only views of a running node for the API, metrics and health checks. Each call hops
/// onto the loop that owns what it reads (the router's for routes, the datapath's for packets
/// and peers; both, one after the other, for some) and copies it; nil or empty when the node is
/// not running.
extension Node {
    /// Seconds since the Unix epoch at which this node was created.
    public static func unixNow() -> Int64 { Int64(time(nil)) }

    public func routes() async -> (selected: [RouteView], fallback: [RouteView]) {
        guard let service else { return ([], []) }
        // The routes on the router's loop, the connections they name on the datapath's.
        guard let (selected, fallback) = try? await service.routerLoop.submit({
            service.inspect { ($0.selectedRoutes(), $0.fallbackRoutes()) }
        }).get() else { return ([], []) }
        return (try? await service.loop.submit {
            let view = { (r: RouteSnapshot) in
                RouteView(subnet: r.subnet, nextHop: service.connectionDescription(of: r.neighbour) ?? "unknown",
                          metric: r.metric, seqno: r.seqno.rawValue)
            }
            return (selected.map(view), fallback.map(view))
        }.get()) ?? ([], [])
    }

    /// Subnets being looked for, with the whole seconds until their query expires.
    public func queriedSubnets() async -> [(subnet: Subnet, secondsLeft: Int64)] {
        guard let service else { return [] }
        return (try? await service.routerLoop.submit {
            let now = RouterService.now()
            return service.inspect { $0.queriedSubnets(now: now) }.map { ($0.subnet, ($0.expires - now) / 1000) }
        }.get()) ?? []
    }

    /// The key owning `address`: our own, or the one a known route to its /64 carries.
    public func publicKey(for address: IPv6Address) async -> PublicKey? {
        if identity.subnet.contains(address) { return identity.publicKey }
        guard let service else { return nil }
        return (try? await service.routerLoop.submit { service.inspect { $0.owner(of: address) } }.get()) ?? nil
    }

    /// The overlay addresses of the nodes owning our selected routes (the SOCKS5 probe's targets).
    public func selectedRouteOwners() async -> [IPv6Address] {
        guard let service else { return [] }
        return (try? await service.routerLoop.submit {
            service.inspect { router in router.selectedRoutes().compactMap { r in r.subnet.ipv6.flatMap { router.owner(of: $0) }?.overlayAddress } }
        }.get()) ?? []
    }

    /// Peers with session state (docs/sessions.md), nearest address first; empty before start.
    public func sessions() async -> [SessionTable.PeerView] {
        guard let service, let datapath else { return [] }
        let views = (try? await service.loop.submit { datapath.sessionViews }.get()) ?? []
        return views.sorted { $0.peer.overlayAddress < $1.peer.overlayAddress }
    }

    public func traffic() async -> TrafficCounters {
        guard let service, let datapath else { return TrafficCounters() }
        return (try? await service.loop.submit { datapath.traffic }.get()) ?? TrafficCounters()
    }

    public func counters() async -> NodeCounters? {
        guard let service, let datapath else { return nil }
        let (discovery, peers, dns) = (self.discovery, self.peers, self.dnsDiscovery)
        let (dnsStats, dnsEndpoints) = (dns?.stats ?? PeerDNSPlan.Stats(), dns?.endpointCount ?? 0)
        let tunDrops = tunQueueDrops()
        guard let (routerStats, selected) = try? await service.routerLoop.submit({
            service.inspect { ($0.stats, $0.selectedCount) }
        }).get() else { return nil }
        return try? await service.loop.submit {
            var stats = datapath.stats
            stats.droppedTunBacklog = tunDrops
            return NodeCounters(router: routerStats, routerInputDropped: service.droppedAtCrossing, datapath: stats,
                         selectedRoutes: selected, queuedPackets: datapath.queuedPackets,
                         connectedPeers: service.peerCount, discovery: discovery?.stats ?? LANDiscovery.Stats(),
                         tlsFailures: peers?.tlsFailures ?? 0, keyProofs: peers?.keyProofs ?? .init(), inboundRefused: peers?.inboundRefused ?? 0,
                         discoveryRefused: peers?.discoveryRefused ?? 0, quic: peers?.quicCounters ?? QUICEndpoint.Counters(),
                         peerDNS: dnsStats, peerDNSEndpoints: dnsEndpoints,
                         messages: datapath.messages.stats, inboxMessages: datapath.messages.inbox.count,
                         inboxBytes: datapath.messages.inbox.bytes)
        }.get()
    }

    /// How long a task took to run through the datapath's loop and then the router's, or nil if not within
    /// `timeoutMs` (a stuck loop stalls every peer). The timeout runs off the loop, so a stuck
    /// loop cannot hold the answer back.
    public func loopLatency(timeoutMs: Int64) async -> Duration? {
        guard let service else { return nil }
        let start = NIODeadline.now()
        let pending = Mutex<CheckedContinuation<Duration?, Never>?>(nil)
        let finish: @Sendable (Duration?) -> Void = { value in
            pending.withLock { c in c.take() }?.resume(returning: value)
        }
        return await withCheckedContinuation { continuation in
            pending.withLock { $0 = continuation }
            // Through both loops: a stuck router stalls routing as a stuck datapath stalls packets.
            service.loop.execute {
                service.routerLoop.execute {
                    finish(.nanoseconds(Int64(NIODeadline.now().uptimeNanoseconds - start.uptimeNanoseconds)))
                }
            }
            Task {
                try? await Task.sleep(for: .milliseconds(timeoutMs))
                finish(nil)
            }
        }
    }
}
