#if canImport(Glibc)
import Glibc
#endif
public import Logging
public import MyceliumCore
public import MyceliumSystem
public import NIOCore
import NIOPosix

/// LAN peer discovery (spec §6): a UDP socket on `[::]:9650` joined to `ff02::cafe` on every
/// suitable interface, a 50-byte beacon to each of them at start and then every minute, and
/// every valid beacon of another node turned into a peer to dial.
///
/// Flow: tick (start, then every `beaconIntervalMs`) → rescan interfaces, join new ones,
/// leave vanished ones → send one beacon per joined interface. A link or IPv6 address change
/// (netlink, `AddressMonitor`) triggers a rescan within `rescanDelayMs` that beacons only on
/// interfaces that just became usable, so a node started while its link-local address was
/// still tentative (DAD) or before an interface existed announces itself as soon as it can,
/// not a minute later. An interface is usable once its link-local address passed DAD. Datagram in → `verdict` (source
/// in fe80::/64, exactly 50 bytes, magic, not our own RouterId) → `PeerManager.discovered`.
/// Everything runs on the datapath's loop. Beacons are not authenticated (as in Rust): in a
/// private network the dialled peer must still pass the TLS handshake.
public final class LANDiscovery: @unchecked Sendable {
    public struct Configuration: Sendable {
        public var port: UInt16 = 9650
        /// Only these interfaces, if any are named (`--peer-discovery-interface`).
        public var interfaces: [String] = []
        /// The node's own TUN, never a discovery interface.
        public var tunName: String?
        /// Announced in beacons: our TCP listen port.
        public var tcpListenPort: UInt16 = 9651
        /// Discovered peers are dialled with TLS.
        public var privateNetwork = false
        public var beaconIntervalMs: Int64 = 60_000

        public init() {}
    }

    public struct Stats: Sendable, Equatable {
        public var beaconsSent: UInt64 = 0
        public var beaconsReceived: UInt64 = 0
        /// Malformed datagrams, or beacons from outside fe80::/64.
        public var beaconsDropped: UInt64 = 0
        public var interfacesJoined = 0
        /// Link or address changes that led to a rescan.
        public var rescans: UInt64 = 0

        public init() {}
    }

    /// What to do with one received datagram.
    public enum Verdict: Equatable, Sendable {
        case peer(Endpoint)
        case own
        case dropped(String)
    }

    public static let group = IPv6Address("ff02::cafe")!

    private let configuration: Configuration
    private let routerId: RouterId
    private let peers: PeerManager
    private let loop: any EventLoop
    private let logger: Logger
    private var channel: (any Channel)?
    private var joined: [String: NIONetworkDevice] = [:]
    private var task: RepeatedTask?
    private var monitor: AddressMonitor?
    /// Reads address flags (tentative or not); on the loop only.
    private var netlink: Netlink?
    private var rescanPending = false
    /// Interfaces usable at the last scan: a change beacons only on the others.
    private var announced: Set<String> = []
    public private(set) var stats = Stats()
    /// Address changes come in bursts (one per address and flag); one rescan takes them all.
    static let rescanDelayMs: Int64 = 100

    public init(configuration: Configuration, routerId: RouterId, peers: PeerManager, loop: any EventLoop, logger: Logger) {
        self.configuration = configuration
        self.routerId = routerId
        self.peers = peers
        self.loop = loop
        self.logger = logger
    }

    /// Binds the socket and sends the first beacons.
    public func start() async throws {
        let channel = try await DatagramBootstrap(group: loop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(BeaconHandler(discovery: self))
                }
            }
            .bind(host: "::", port: Int(configuration.port)).get()
        // Our own beacons must not come back to us (they would be dropped anyway).
        try await channel.setOption(ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_multicast_loop), value: 0).get()
        netlink = try? Netlink()
        do {
            let monitor = try AddressMonitor { [self, loop] in loop.execute { self.addressesChanged() } }
            monitor.start()
            self.monitor = monitor
        } catch {
            logger.warning("LAN discovery cannot follow address changes; new interfaces wait for the next beacon", metadata: ["error": "\(error)"])
        }
        try await loop.submit { [self] in
            self.channel = channel
            tick()
            task = loop.scheduleRepeatedTask(initialDelay: .milliseconds(configuration.beaconIntervalMs),
                                             delay: .milliseconds(configuration.beaconIntervalMs)) { [self] _ in tick() }
        }.get()
        logger.info("LAN discovery on", metadata: ["port": "\(configuration.port)", "group": "\(Self.group)"])
    }

    public func shutdown() async {
        monitor?.stop()
        monitor = nil
        let channel = try? await loop.submit { [self] () -> (any Channel)? in
            task?.cancel()
            defer { self.channel = nil }
            return self.channel
        }.get()
        if let channel = channel.flatMap({ $0 }) { try? await channel.close().get() }
    }

    /// Interfaces to announce on (spec §6): up, multicast-capable, not loopback, not
    /// point-to-point (TUNs are), not our TUN, with a link-local address; restricted to `only`
    /// when names are given.
    /// `usable`, when known, are the interfaces whose link-local address passed DAD.
    public static func eligible(_ interfaces: [NetworkInterfaces.Interface], only: [String], tunName: String?,
                                usable: Set<UInt32>? = nil) -> [NetworkInterfaces.Interface] {
        interfaces.filter { i in
            i.isUp && i.supportsMulticast && !i.isLoopback && !i.isPointToPoint && i.hasLinkLocal && i.index != 0
                && i.name != tunName && (only.isEmpty || only.contains(i.name)) && (usable?.contains(i.index) ?? true)
        }
    }

    /// Judges one datagram from `source` (its interface in `scopeId`). The socket listens on
    /// every interface, so a datagram that arrived on one discovery does not run on (not in
    /// `interfaces`, the joined interfaces' indexes) is dropped: a beacon can only bring us a
    /// peer on the link it was sent on, never on a link we were told to keep out of it.
    public static func verdict(source: IPv6Address, scopeId: UInt32, interfaces: Set<UInt32>, payload: [UInt8],
                               ownRouterId: RouterId, privateNetwork: Bool) -> Verdict {
        guard source.high == 0xFE80_0000_0000_0000 else { return .dropped("source \(source) is not link-local") }
        guard interfaces.contains(scopeId) else { return .dropped("arrived on interface \(scopeId), where discovery does not run") }
        let beacon: DiscoveryBeacon
        do { beacon = try DiscoveryBeacon(decoding: payload) } catch { return .dropped("\(error)") }
        guard beacon.routerId != ownRouterId else { return .own }
        guard beacon.tcpPort != 0 else { return .dropped("port 0") }
        return .peer(Endpoint(proto: privateNetwork ? .tls : .tcp, host: .ip(.v6(source)), port: beacon.tcpPort, scopeId: scopeId))
    }

    // MARK: on the loop

    private func addressesChanged() {
        guard !rescanPending else { return }
        rescanPending = true
        loop.scheduleTask(in: .milliseconds(Self.rescanDelayMs)) { [self] in
            rescanPending = false
            stats.rescans += 1
            tick(periodic: false)
        }
    }

    /// Periodic: beacons on every joined interface. After a change: only on newly usable ones.
    private func tick(periodic: Bool = true) {
        guard let channel = channel as? any MulticastChannel else { return }
        let wanted = Self.eligible(NetworkInterfaces.list(), only: configuration.interfaces, tunName: configuration.tunName,
                                   usable: try? netlink?.interfacesWithUsableLinkLocal())
        let devices = (try? System.enumerateDevices()) ?? []
        for name in joined.keys.sorted() where !wanted.contains(where: { $0.name == name }) {
            channel.leaveGroup(groupAddress(scope: 0), device: joined[name], promise: nil)
            joined[name] = nil
            logger.debug("LAN discovery left interface", metadata: ["interface": "\(name)"])
        }
        for interface in wanted where joined[interface.name]?.interfaceIndex != Int(interface.index) {
            guard let device = devices.first(where: { $0.name == interface.name && $0.address?.protocol == .inet6 }) else { continue }
            joined[interface.name] = device
            let name = interface.name
            channel.joinGroup(groupAddress(scope: 0), device: device).whenComplete { [self] result in
                switch result {
                case .success: logger.debug("LAN discovery joined interface", metadata: ["interface": "\(name)"])
                case let .failure(error):
                    joined[name] = nil
                    logger.warning("LAN discovery cannot join interface", metadata: ["interface": "\(name)", "error": "\(error)"])
                }
            }
        }
        for name in configuration.interfaces where !wanted.contains(where: { $0.name == name }) {
            logger.debug("LAN discovery interface not usable (down, no link-local address or no multicast)", metadata: ["interface": "\(name)"])
        }
        stats.interfacesJoined = joined.count
        let beacon = DiscoveryBeacon(tcpPort: configuration.tcpListenPort, routerId: routerId).encode()
        let previously = announced
        // Joined, not merely wanted: an interface joined on a later rescan still gets its beacon.
        announced = Set(joined.keys)
        for (name, device) in joined.sorted(by: { $0.key < $1.key }) where periodic || !previously.contains(name) {
            var buffer = channel.allocator.buffer(capacity: beacon.count)
            buffer.writeBytes(beacon)
            let envelope = AddressedEnvelope(remoteAddress: groupAddress(scope: UInt32(device.interfaceIndex)), data: buffer)
            channel.writeAndFlush(envelope).whenComplete { [self] result in
                switch result {
                case .success: stats.beaconsSent += 1
                case let .failure(error):
                    logger.debug("LAN discovery beacon not sent", metadata: ["interface": "\(name)", "error": "\(error)"])
                }
            }
        }
    }

    fileprivate func received(_ envelope: AddressedEnvelope<ByteBuffer>) {
        guard case let .v6(source) = envelope.remoteAddress else { stats.beaconsDropped += 1; return }
        let address = withUnsafeBytes(of: source.address.sin6_addr) { IPv6Address(bytes: $0) }
        let payload = Array(envelope.data.readableBytesView)
        let joinedIndexes = Set(joined.values.map { UInt32(truncatingIfNeeded: $0.interfaceIndex) })
        switch Self.verdict(source: address, scopeId: source.address.sin6_scope_id, interfaces: joinedIndexes, payload: payload,
                            ownRouterId: routerId, privateNetwork: configuration.privateNetwork) {
        case let .peer(endpoint):
            stats.beaconsReceived += 1
            peers.discovered(endpoint)
        case .own:
            break
        case let .dropped(reason):
            stats.beaconsDropped += 1
            logger.debug("LAN discovery datagram dropped", metadata: ["from": "\(envelope.remoteAddress)", "reason": "\(reason)"])
        }
    }

    private func groupAddress(scope: UInt32) -> SocketAddress {
        var raw = sockaddr_in6()
        raw.sin6_family = sa_family_t(AF_INET6)
        raw.sin6_port = configuration.port.bigEndian
        raw.sin6_scope_id = scope
        withUnsafeMutableBytes(of: &raw.sin6_addr) { $0.copyBytes(from: Self.group.bytes) }
        return SocketAddress(raw, host: Self.group.description)
    }
}

/// Hands received datagrams to the discovery (on the loop).
private final class BeaconHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    private let discovery: LANDiscovery

    init(discovery: LANDiscovery) { self.discovery = discovery }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        discovery.received(unwrapInboundIn(data))
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A datagram socket's errors (ICMP unreachable, say) do not end discovery.
    }
}
